// Plays `/read` streams in the <audio> element while they are being synthesized, and keeps a
// short history of requests with their time to first audio and real-time factor.
//
// Time to first audio: from Speak to the element's first `playing` event.
// Made in: from Speak to the last byte of the response (the Resource Timing entry the browser
// records once a response has ended). Real-time factor: that time over the seconds of audio
// the response held, known once the browser has read the whole stream (a streamed response
// has no length: until then the element's duration is Infinity).

import { serverError } from './api.js';

const HISTORY_LENGTH = 8;
/// Class names of the history table's columns (phones leave out the audio length).
const COLUMNS = ['col-request', 'col-first', 'col-made', 'col-audio', 'col-rtf', 'col-state'];

export class Player {
  constructor({ audio, status, historyBody, stopButton }) {
    this.audio = audio;
    this.status = status;
    this.historyBody = historyBody;
    this.stopButton = stopButton;
    this.current = null;
    this.records = [];
    audio.addEventListener('playing', () => this.playing());
    audio.addEventListener('ended', () => this.ended());
    audio.addEventListener('durationchange', () => this.current && this.finish(this.current));
    audio.addEventListener('error', () => this.failed());
    new PerformanceObserver((list) => list.getEntries().forEach((entry) => this.responseEnded(entry)))
      .observe({ type: 'resource' });
  }

  /// Starts playing `url` (a `/read` URL); `label` describes the request in the history.
  speak(url, label) {
    this.stop();
    const record = {
      url: new URL(url, location.href).href,
      ...label,
      start: performance.now(),
      firstAudio: null,
      responseEnd: null,
      duration: null,
      state: 'loading',
    };
    this.current = record;
    this.records.unshift(record);
    this.records.length = Math.min(this.records.length, HISTORY_LENGTH);
    this.audio.src = url;
    this.stopButton.disabled = false;
    this.say('Synthesizing…');
    this.render();
    this.audio.play().catch((error) => {
      // Stopped or replaced before it played, or a media error the `error` handler reports.
      if (record !== this.current || error.name === 'AbortError' || error.name === 'NotSupportedError') return;
      reportError(error.name === 'NotAllowedError'
        ? new Error('The browser blocked playback until the page is clicked: press Speak again.')
        : error);
    });
  }

  /// Stops playback and the download (the server then stops synthesizing).
  stop() {
    const record = this.current;
    if (!record) return;
    this.current = null;
    if (record.state === 'loading' || record.state === 'playing') {
      record.state = 'stopped';
      this.say('Stopped.');
    }
    this.audio.pause();
    this.audio.removeAttribute('src');
    this.audio.load();
    this.stopButton.disabled = true;
    this.render();
  }

  playing() {
    const record = this.current;
    if (!record) return;
    if (record.firstAudio === null) record.firstAudio = performance.now() - record.start;
    record.state = 'playing';
    this.say(`Playing; first audio after ${milliseconds(record.firstAudio)}.`);
    this.render();
  }

  ended() {
    const record = this.current;
    if (!record) return;
    record.state = 'played';
    record.duration = this.audio.currentTime;
    this.stopButton.disabled = true;
    this.say('Done.');
    this.finish(record);
  }

  /// The browser's record of a finished response: the moment its last byte arrived.
  responseEnded(entry) {
    const record = this.records.find((candidate) => candidate.url === entry.name && candidate.responseEnd === null);
    if (!record || record.state === 'stopped') return;
    record.responseEnd = entry.responseEnd;
    this.finish(record);
  }

  /// Fills in the audio length and real-time factor once both ends are known.
  finish(record) {
    if (record === this.current && record.duration === null && Number.isFinite(this.audio.duration) && record.responseEnd !== null) {
      record.duration = this.audio.duration;
    }
    if (record.duration && record.responseEnd !== null) {
      record.rtf = (record.responseEnd - record.start) / 1000 / record.duration;
    }
    this.render();
  }

  /// The element cannot say why a load failed; asking again shows the server's JSON error.
  async failed() {
    const record = this.current;
    if (!record) return;
    record.state = 'failed';
    this.stopButton.disabled = true;
    this.say('Failed.');
    this.render();
    const mediaError = this.audio.error;
    const controller = new AbortController();
    try {
      const response = await fetch(record.url, { signal: controller.signal });
      if (!response.ok) throw await serverError(response);
      controller.abort();
      throw new Error(`The browser could not play this ${record.format} audio (${mediaError ? mediaError.message || `media error ${mediaError.code}` : 'unknown error'}).`);
    } catch (error) {
      reportError(error);
    }
  }

  say(message) {
    this.status.textContent = message;
  }

  render() {
    const rows = this.records.map((record) => {
      const row = document.createElement('tr');
      const cells = [
        `${record.voice} · ${record.format}`,
        record.firstAudio === null ? '—' : milliseconds(record.firstAudio),
        record.responseEnd === null ? '—' : `${((record.responseEnd - record.start) / 1000).toFixed(2)} s`,
        record.duration ? `${record.duration.toFixed(1)} s` : '—',
        record.rtf === undefined ? '—' : record.rtf.toFixed(3),
        record.state,
      ];
      cells.forEach((text, index) => {
        const cell = document.createElement('td');
        cell.textContent = text;
        cell.className = COLUMNS[index];
        row.append(cell);
      });
      row.className = `state-${record.state}`;
      return row;
    });
    this.historyBody.replaceChildren(...rows);
  }
}

function milliseconds(value) {
  return `${Math.round(value)} ms`;
}
