// Loaded first, as a classic deferred script, so that its handlers are in place before any module
// runs (a module that fails to parse is reported here too). Every failure ends up in one visible
// banner; nothing is swallowed. Modules report caught errors with the standard `reportError()`,
// which reaches `window.onerror` like an uncaught one.
'use strict';

(function installErrorBanner() {
  const banner = document.getElementById('error-banner');
  const text = document.getElementById('error-text');

  function show(message) {
    text.textContent = message;
    banner.hidden = false;
  }

  function describe(reason) {
    if (reason instanceof Error) return reason.message || String(reason);
    return String(reason);
  }

  window.onerror = (message, source, line, column, error) => {
    // Errors the page raised on purpose (a server's JSON error) carry their own message.
    show(error ? describe(error) : source ? `${message} (${source}:${line})` : String(message));
  };
  window.addEventListener('unhandledrejection', (event) => {
    show(describe(event.reason));
  });
  document.getElementById('error-close').addEventListener('click', () => {
    banner.hidden = true;
  });
})();
