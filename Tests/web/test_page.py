#!/usr/bin/env python3
"""The web page in real headless Chromium against a real `lark serve`.

Checks that the page loads with no console error, picks a voice, and that pressing Speak plays
the NDJSON speech stream through the Web Audio API while it is still being synthesized: sound is
scheduled at a moment when the server has not yet finished the response (the server writes its
request log line only once a response's last byte is written), within 0.3 s of the server's first
byte; it states the time from Speak to sound. Words light up in order while they are heard, and
the long text scrolls to follow them. Then Ctrl+Enter speaks again,
Escape stops, and errors (the server's JSON message, an unhandled rejection) appear in the page.

    python Tests/web/test_page.py --lark .build/debug/lark --port 26040 [--screenshots docs]

Exit status 0 when every check passes; otherwise what failed is printed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOICE = "en_US-joe-medium"
MULTI_VOICE = "en_US-trio-medium"
# Three long sentences: with one synthesis thread the stream lasts a few seconds, while the
# first sentence reaches the browser within about a second.
TEXT = (
    "The lighthouse keeper climbed the winding stairs every evening at dusk, carrying a lantern, "
    "a flask of tea, and a notebook in which he wrote down the colour of the sea and the shape of the clouds. "
    "Over thirty years the notebooks filled a whole shelf in the kitchen, and visitors from the village "
    "would sometimes ask to read them, turning the pages slowly as the wind rattled the windows. "
    "When he finally retired, he gave every single notebook to the small library by the harbour, where "
    "children still borrow them on rainy afternoons to learn what the weather was like long before they were born."
)

# The server's text limit in this test, so that a longer text shows the server's 413 in the page.
MAX_TEXT = 1000


def log(message):
    print(f"[web] {message}", flush=True)


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Server:
    """`lark serve` on loopback with its log in a file (one synthesis thread, one worker)."""

    def __init__(self, binary, port, extra=()):
        self.base = f"http://127.0.0.1:{port}"
        self.log_file = tempfile.NamedTemporaryFile(prefix="lark-web-", suffix=".log", delete=False)
        deps = os.path.join(ROOT, ".deps")
        self.scratch = tempfile.TemporaryDirectory(prefix="lark-web-voices-")
        self.jobs = tempfile.TemporaryDirectory(prefix="lark-web-jobs-")
        make_multi_speaker_voice(os.path.join(deps, "voices"), self.scratch.name)
        self.process = subprocess.Popen(
            [binary, "serve", "--port", str(port), "--data-dir", os.path.join(deps, "voices"),
             "--data-dir", self.scratch.name,
             "--espeak-data", deps, "--threads", "1", "--workers", "1", "-m", VOICE,
             "--max-text-chars", str(MAX_TEXT), "--jobs-dir", self.jobs.name, *extra],
            stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            check(self.process.poll() is None, f"lark serve exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise Failure(f"lark serve did not become ready:\n{self.log()}")

    def log(self):
        with open(self.log_file.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def finished_speech(self):
        """Log lines of speech responses whose last byte has been written."""
        return [line for line in self.log().splitlines() if "POST /api/v1/speech " in line]

    def status_of(self, path):
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.unlink(self.log_file.name)
        self.scratch.cleanup()
        self.jobs.cleanup()


def make_multi_speaker_voice(voices, directory):
    """A three-speaker voice on the joe model, for the speaker picker (only listed, never used:
    the model itself has no speaker input)."""
    with open(os.path.join(voices, VOICE + ".onnx.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    config["num_speakers"] = 3
    config["speaker_id_map"] = {"alice": 0, "bob": 1, "carol": 2}
    with open(os.path.join(directory, MULTI_VOICE + ".onnx.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    os.symlink(os.path.join(voices, VOICE + ".onnx"), os.path.join(directory, MULTI_VOICE + ".onnx"))


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",  # running as root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",  # Speak is clicked by WebDriver, but be sure
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The Debian driver, never Selenium Manager (which would try to download one).
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def viewport(driver, width, height, mobile):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def console_errors(driver):
    """Browser log errors, less the one the page expects: 404 from /api/v1/jobs on a server
    without jobs (Chromium logs every 4xx fetch; the page turns it into a note)."""
    errors = []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        if "/api/v1/jobs" in entry["message"] and "404" in entry["message"]:
            continue
        errors.append(entry["message"])
    return errors


def banner_text(driver):
    return driver.execute_script(
        "const b = document.getElementById('error-banner'); return b.hidden ? '' : b.innerText;")


def history(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#history tbody tr')].map(r => [...r.cells].map(c => c.textContent));")


def run(args):
    started = time.monotonic()
    server = Server(args.lark, args.port)
    driver = None
    try:
        jobs_status = server.status_of("/api/v1/jobs?limit=20")
        driver = browser()
        driver.set_script_timeout(10)
        viewport(driver, 1280, 900, False)
        driver.get(server.base + "/")
        WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        check(driver.title.startswith("Lark"), f"unexpected title {driver.title!r}")
        log(f"page ready after {time.monotonic() - started:.1f} s")

        # Jobs: this server either has them or says so.
        make_file = driver.find_element(By.ID, "make-file")
        note = driver.find_element(By.ID, "jobs-note")
        WebDriverWait(driver, 5).until(lambda d: note.is_displayed() or make_file.is_enabled())
        if jobs_status == 404:
            check(not make_file.is_enabled(), "Make a file is enabled on a server without jobs")
            check(note.text == "jobs are not enabled on this server", f"jobs note reads {note.text!r}")
        else:
            check(make_file.is_enabled(), f"jobs answered {jobs_status} but Make a file is disabled")

        # A multi-speaker voice shows the speaker picker; a one-speaker voice hides it.
        Select(driver.find_element(By.ID, "voice")).select_by_value(MULTI_VOICE)
        speaker = driver.find_element(By.ID, "speaker")
        check(speaker.is_displayed() and speaker.is_enabled(), "no speaker picker for a three-speaker voice")
        names = [option.get_attribute("value") for option in Select(speaker).options]
        check(names == ["alice", "bob", "carol"], f"speakers {names}")

        # The voice, with its own settings from /voices.
        Select(driver.find_element(By.ID, "voice")).select_by_value(VOICE)
        voice = json.loads(urllib.request.urlopen(server.base + "/voices").read())
        joe = next(v for v in voice if v["Id"] == VOICE)
        for element, key in (("length-scale", "LengthScale"), ("noise-scale", "NoiseScale"), ("noise-w", "NoiseW")):
            value = float(driver.find_element(By.ID, element).get_attribute("value"))
            check(abs(value - joe[key]) < 1e-6, f"{element} is {value}, the voice's default is {joe[key]}")
        check(not driver.find_element(By.ID, "speaker-field").is_displayed() and not speaker.is_enabled(),
              "speaker picker shown for a one-speaker voice")
        check(Select(driver.find_element(By.ID, "format")).first_selected_option.get_attribute("value") == "mp3",
              "mp3 is not the default format")

        text = driver.find_element(By.ID, "text")
        text.clear()
        text.send_keys(TEXT)

        # Speak: the page plays the NDJSON stream through the Web Audio API. Watch the page's
        # record of the request and the server's log together.
        reads_before = len(server.finished_speech())
        driver.find_element(By.ID, "speak").click()
        clicked = time.monotonic()
        timing = None
        while time.monotonic() - clicked < 20:
            timing = driver.execute_script(
                "const r = window.larkPlayer.current; return r && r.firstAudio !== null && r.firstByte !== null"
                " ? {firstAudio: r.firstAudio, firstByte: r.firstByte, firstLine: r.firstLine, state: r.state,"
                " context: window.larkPlayer.context.state} : null")
            if timing:
                # Read the log only after sound was scheduled: a line here would mean the response
                # had ended first, and nothing would prove the stream plays as it arrives.
                finished = len(server.finished_speech()) - reads_before
                check(finished == 0, "the speech response had finished before its first sentence was playing")
                break
            time.sleep(0.02)
        check(timing is not None, f"audio never played; banner: {banner_text(driver)!r}; "
              f"console: {console_errors(driver)}; log:\n{server.log()}")
        check(timing["context"] == "running", f"the audio context is {timing['context']}")
        after_first_byte = timing["firstAudio"] - timing["firstByte"]
        log(f"Speak to sound: {timing['firstAudio']:.0f} ms (server's first byte after {timing['firstByte']:.0f} ms, "
            f"its whole first sentence after {timing['firstLine']:.0f} ms, sound {after_first_byte:.0f} ms after the first byte) "
            "while the server was still sending the response")
        check(after_first_byte <= 300, f"sound started {after_first_byte:.0f} ms after the first byte (limit 300 ms)")

        # Words light up in the order they are spoken, and the long text scrolls to follow them.
        words = []
        scrolled = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = driver.execute_script(
                "const m = document.querySelector('#reading mark'); const r = window.larkPlayer.current;"
                "const box = document.getElementById('reading');"
                "return {word: m ? m.textContent : null, state: r ? r.state : 'none', scroll: box.scrollTop,"
                " position: r && r.startsAt !== null ? (window.larkPlayer.context.currentTime - r.startsAt) * 1000 : null,"
                " mark: r && r.word ? [r.word.time, r.word.end_time] : null}")
            if state["word"] and (not words or words[-1] != state["word"]):
                words.append(state["word"])
                if state["mark"] and state["position"] is not None:
                    check(state["mark"][0] - 50 <= state["position"] <= state["mark"][1] + 250,
                          f"{state['word']!r} lit at {state['position']:.0f} ms, its mark is {state['mark']}")
            scrolled = max(scrolled, state["scroll"])
            if state["state"] != "playing":
                break
            time.sleep(0.03)
        spoken = [word.strip(",.") for word in TEXT.split()]
        position = 0
        for word in words:
            check(word in spoken[position:], f"{word!r} lit out of order: {words}")
            position = spoken.index(word, position)
        check(len(words) >= len(spoken) // 2, f"only {len(words)} of {len(spoken)} words lit: {words}")
        check(scrolled > 0, "the text did not scroll to follow the words")
        log(f"{len(words)} of {len(spoken)} words lit in order while heard; the text scrolled {scrolled} px")

        WebDriverWait(driver, 30).until(lambda d: history(d)[0][5] == "played")
        lines = server.finished_speech()[reads_before:]
        check(lines and " 200 " in lines[0], f"the speech request did not finish with 200: {lines}")
        row = history(driver)[0]
        log(f"history: {row}")
        check(row[0] == f"{VOICE} · stream", f"history row {row}")
        check(row[1].endswith(" ms") and row[2].endswith(" s") and row[3].endswith(" s"), f"history row lacks numbers: {row}")
        check(0 < float(row[4]) < 5, f"real-time factor {row[4]} out of range")
        href = driver.find_element(By.ID, "download").get_attribute("href")
        check("/read?" in href and "outputFormat=mp3" in href, f"download link {href}")

        # Keyboard: Ctrl+Enter in the text speaks, Escape stops.
        text.send_keys(Keys.CONTROL, Keys.ENTER)
        WebDriverWait(driver, 10).until(lambda d: len(history(d)) >= 2 and history(d)[0][5] in ("loading", "playing"))
        check(history(driver)[1][5] != "loading", f"the first request did not finish: {history(driver)[1]}")
        driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        WebDriverWait(driver, 5).until(lambda d: history(d)[0][5] == "stopped")
        check(driver.execute_script("return window.larkPlayer.current === null"), "Escape did not stop playback")

        # Make a file: a job for the text, listed with its live status, then a link to its audio.
        if jobs_status == 200:
            text.clear()
            text.send_keys("A file, made by a job. It has two sentences.")
            make_file.click()
            WebDriverWait(driver, 60).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs li .state-succeeded")
                or d.find_elements(By.CSS_SELECTOR, "#jobs li .state-failed"))
            item = driver.find_element(By.CSS_SELECTOR, "#jobs li")
            check("succeeded" in item.text and "A file, made by a job." in item.text, f"job row reads {item.text!r}")
            href = item.find_element(By.TAG_NAME, "a").get_attribute("href")
            with urllib.request.urlopen(href, timeout=10) as response:
                body = response.read()
                check(response.status == 200 and response.headers["Content-Type"] == "audio/mpeg" and len(body) > 1000,
                      f"the job's audio link {href} gave {response.status} {response.headers['Content-Type']} {len(body)} bytes")
            log(f"Make a file: job listed as succeeded, its link gives {len(body)} bytes of MP3")

        if args.screenshots:
            shot(driver, args.screenshots, "desktop", 1280, 900, False)
            shot(driver, args.screenshots, "phone", 390, 844, True)
            viewport(driver, 1280, 900, False)

        errors = console_errors(driver)
        check(not errors, f"console errors: {errors}")
        check(banner_text(driver) == "", f"error banner shown: {banner_text(driver)!r}")

        # Errors are shown: the server's JSON message for a refused text, uncaught errors, rejections.
        driver.execute_script("arguments[0].value = arguments[1]", text, "Too long. " * (MAX_TEXT // 10 + 1))
        driver.find_element(By.ID, "speak").click()
        WebDriverWait(driver, 10).until(lambda d: banner_text(d) != "")
        check(f"more than the limit of {MAX_TEXT}" in banner_text(driver) and "(413)" in banner_text(driver),
              f"the banner does not show the server's message: {banner_text(driver)!r}")
        driver.find_element(By.ID, "error-close").click()
        # The page's handlers for uncaught errors and rejections, fed the browser's own events
        # (an exception thrown inside WebDriver's script reaches the page muted, as "Script error.").
        for kind, script in (
            ("error", "window.dispatchEvent(new ErrorEvent('error', {message: 'x', error: new Error('error on purpose')}))"),
            ("rejection", "const reason = new Error('rejection on purpose'); const promise = Promise.reject(reason);"
                          "promise.catch(() => {});"
                          "window.dispatchEvent(new PromiseRejectionEvent('unhandledrejection', {promise, reason}))"),
        ):
            check(banner_text(driver) == "", "the banner did not close")
            driver.execute_script(script)
            WebDriverWait(driver, 5).until(lambda d: f"{kind} on purpose" in banner_text(d))
            driver.find_element(By.ID, "error-close").click()
        if args.screenshots:
            log(f"screenshots in {args.screenshots}")
        log(f"all checks passed in {time.monotonic() - started:.1f} s")
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


def shot(driver, directory, name, width, height, mobile):
    viewport(driver, width, height, mobile)
    driver.execute_script("window.scrollTo(0, 0); document.getElementById('text').scrollTop = 0")
    time.sleep(0.3)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"web-page-{name}.png")
    driver.save_screenshot(path)
    log(f"screenshot {path}")


def run_without_jobs(args):
    """A server started with --disable-jobs: the page says so and disables Make a file."""
    server = Server(args.lark, args.port + 2, ["--disable-jobs"])  # +1 is the route tests' server
    driver = None
    try:
        check(server.status_of("/api/v1/jobs?limit=20") == 404, "--disable-jobs still answers /api/v1/jobs")
        driver = browser()
        driver.get(server.base + "/")
        WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        note = driver.find_element(By.ID, "jobs-note")
        WebDriverWait(driver, 5).until(lambda d: note.is_displayed())
        check(note.text == "jobs are not enabled on this server", f"jobs note reads {note.text!r}")
        check(not driver.find_element(By.ID, "make-file").is_enabled(), "Make a file is enabled without jobs")
        errors = console_errors(driver)
        check(not errors, f"console errors: {errors}")
        log("without jobs: the note shows and Make a file is disabled")
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


def run_with_keys(args):
    """A server with API keys: the page asks for one, keeps it in the browser, and speaks with it."""
    keys_dir = tempfile.TemporaryDirectory(prefix="lark-web-keys-")
    keys = os.path.join(keys_dir.name, "keys.json")
    key = subprocess.run([args.lark, "keys", "add", "web", "--scopes", "speak,jobs", "--keys-file", keys],
                         capture_output=True, text=True, check=True).stdout.strip()
    server = Server(args.lark, args.port + 3, ["--keys-file", keys])
    driver = None
    try:
        check(server.status_of("/voices") == 401, "a server with keys listed its voices without one")
        driver = browser()
        driver.get(server.base + "/")
        form = driver.find_element(By.ID, "key-form")
        WebDriverWait(driver, 15).until(lambda d: form.is_displayed())
        driver.find_element(By.ID, "api-key").send_keys(key)
        driver.find_element(By.ID, "key-save").click()
        WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        check(driver.execute_script("return localStorage.getItem('lark.apiKey')") == key, "the key was not kept")
        check(not driver.find_element(By.ID, "key-form").is_displayed(), "the key form is still shown with a key")
        text = driver.find_element(By.ID, "text")
        text.clear()
        text.send_keys("Spoken with a key.")
        driver.find_element(By.ID, "speak").click()
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "const r = window.larkPlayer.current; return r && r.firstAudio !== null"))
        check(any(" POST /api/v1/speech 200" in line for line in server.log().splitlines()),
              f"no keyed speech in the log:\n{server.log()}")
        log("with keys: the page asked for a key, kept it, and spoke with it")
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
        keys_dir.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lark", required=True, help="the lark binary")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--screenshots", help="directory for web-page-desktop.png and web-page-phone.png")
    args = parser.parse_args()
    try:
        run(args)
        run_without_jobs(args)
        run_with_keys(args)
    except Failure as failure:
        print(f"[web] FAILED: {failure}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
