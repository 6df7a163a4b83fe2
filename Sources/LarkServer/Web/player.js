// Plays speech through the Web Audio API from `POST /api/v1/speech`'s NDJSON stream (raw PCM,
// one line per sentence with its word marks), and lights up each word while it is heard.
//
// Each line's audio becomes an AudioBuffer as soon as the line arrives and is scheduled right
// after the one before, so sound starts as soon as the first sentence is here (an <audio>
// element would first buffer a good part of a stream). Word marks are times from the start of
// the audio: the word whose [time, end_time) holds the playing position is highlighted.
//
// The history keeps, per request: the time from Speak to sound, and from the server's first
// byte to sound; the time until the last byte arrived; the audio's length; and the real-time
// factor (that time over the audio's length).

import { request } from './api.js';

const HISTORY_LENGTH = 8;
/// Class names of the history table's columns (phones leave out the audio length).
const COLUMNS = ['col-request', 'col-first', 'col-made', 'col-audio', 'col-rtf', 'col-state'];
/// Seconds between the moment a sentence is scheduled and the moment it may start: room for
/// the audio thread to take it.
const LEAD = 0.03;

export class Player {
  constructor({ reading, status, historyBody, stopButton }) {
    this.reading = reading;
    this.status = status;
    this.historyBody = historyBody;
    this.stopButton = stopButton;
    this.context = null;
    this.current = null;
    this.records = [];
  }

  /// The audio context, made (or woken) inside the click that speaks: browsers allow sound only
  /// from a context started by a user's gesture.
  audioContext() {
    if (!this.context) this.context = new AudioContext();
    if (this.context.state === 'suspended') this.context.resume();
    return this.context;
  }

  /// Speaks `body` (an `/api/v1/speech` body) at `sampleRate`; `label` describes it in the history.
  async speak(body, sampleRate, label) {
    this.stop();
    const context = this.audioContext();
    const record = {
      ...label,
      text: body.text,
      start: performance.now(),
      firstByte: null,
      firstLine: null,
      firstAudio: null,
      responseEnd: null,
      duration: 0,
      state: 'loading',
      controller: new AbortController(),
      sources: [],
      marks: [],
      startsAt: null,
      nextAt: 0,
      word: null,
    };
    this.current = record;
    this.records.unshift(record);
    this.records.length = Math.min(this.records.length, HISTORY_LENGTH);
    this.stopButton.disabled = false;
    this.showText(record);
    this.say('Synthesizing…');
    this.render();
    try {
      const response = await request('/api/v1/speech', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...body, format: 'pcm', stream: true, marks: ['word', 'sentence'] }),
        signal: record.controller.signal,
      });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let pending = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (record !== this.current) return;
        if (value && record.firstByte === null) record.firstByte = performance.now() - record.start;
        pending += decoder.decode(value || new Uint8Array(), { stream: !done });
        let newline;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (line.trim()) this.play(record, JSON.parse(line), sampleRate, context);
        }
        if (done) break;
      }
      record.responseEnd = performance.now() - record.start;
      this.render();
    } catch (error) {
      if (record !== this.current || error.name === 'AbortError') return;
      record.state = 'failed';
      this.stopButton.disabled = true;
      this.say('Failed.');
      this.render();
      throw error;
    }
  }

  /// Schedules one line's audio after what is already scheduled, and keeps its marks.
  play(record, line, sampleRate, context) {
    if (record.firstLine === null) record.firstLine = performance.now() - record.start;
    // Base64 of 16-bit little-endian samples, read in one pass straight into the buffer.
    const binary = atob(line.audio);
    const count = binary.length >> 1;
    if (count > 0) {
      const buffer = context.createBuffer(1, count, sampleRate);
      const channel = buffer.getChannelData(0);
      for (let index = 0; index < count; index += 1) {
        const value = binary.charCodeAt(2 * index) | (binary.charCodeAt(2 * index + 1) << 8);
        channel[index] = (value >= 32768 ? value - 65536 : value) / 32768;
      }
      const source = context.createBufferSource();
      source.buffer = buffer;
      source.connect(context.destination);
      const at = Math.max(record.nextAt, context.currentTime + LEAD);
      if (record.startsAt === null) {
        record.startsAt = at;
        // When the first sample will be heard, on the page's clock.
        record.firstAudio = performance.now() - record.start + (at - context.currentTime) * 1000;
        record.state = 'playing';
        this.say(`Playing; sound ${milliseconds(record.firstAudio)} after Speak.`);
        requestAnimationFrame(() => this.follow(record));
      }
      source.start(at);
      record.nextAt = at + buffer.duration;
      record.duration += buffer.duration;
      record.sources.push(source);
      source.onended = () => {
        if (record === this.current && record.responseEnd !== null && context.currentTime >= record.nextAt - 0.01) this.ended(record);
      };
    }
    record.marks.push(...line.marks.filter((mark) => mark.type === 'word'));
    this.render();
  }

  /// Highlights the word being heard, every frame while the record plays.
  follow(record) {
    if (record !== this.current || record.state !== 'playing') return;
    const position = (this.context.currentTime - record.startsAt) * 1000;
    const word = record.marks.find((mark) => mark.time <= position && position < mark.end_time) || null;
    if (word !== record.word) {
      record.word = word;
      this.highlight(record, word);
    }
    requestAnimationFrame(() => this.follow(record));
  }

  /// The text being read, as plain text (a mark's `start_char`/`end_char` count code points).
  showText(record) {
    record.codePoints = Array.from(record.text);
    this.reading.hidden = false;
    this.reading.replaceChildren(document.createTextNode(record.text));
  }

  highlight(record, word) {
    if (!word) return;
    const before = record.codePoints.slice(0, word.start_char).join('');
    const spoken = record.codePoints.slice(word.start_char, word.end_char).join('');
    const after = record.codePoints.slice(word.end_char).join('');
    const mark = document.createElement('mark');
    mark.textContent = spoken;
    this.reading.replaceChildren(document.createTextNode(before), mark, document.createTextNode(after));
    // Long texts scroll so that the word being heard stays in view.
    const box = this.reading.getBoundingClientRect();
    const place = mark.getBoundingClientRect();
    if (place.top < box.top || place.bottom > box.bottom) {
      this.reading.scrollTop += place.top - box.top - box.height / 3;
    }
  }

  ended(record) {
    record.state = 'played';
    record.word = null;
    this.reading.replaceChildren(document.createTextNode(record.text));
    this.stopButton.disabled = true;
    this.say('Done.');
    this.render();
  }

  /// Stops playback and the download (the server then stops synthesizing).
  stop() {
    const record = this.current;
    if (!record) return;
    this.current = null;
    record.controller.abort();
    for (const source of record.sources) {
      try {
        source.stop();
      } catch {
        // Not started yet or already over.
      }
    }
    record.sources = [];
    if (record.state === 'loading' || record.state === 'playing') {
      record.state = 'stopped';
      this.say('Stopped.');
    }
    this.stopButton.disabled = true;
    this.render();
  }

  say(message) {
    this.status.textContent = message;
  }

  render() {
    const rows = this.records.map((record) => {
      const row = document.createElement('tr');
      const made = record.responseEnd === null ? null : record.responseEnd / 1000;
      const cells = [
        `${record.voice} · ${record.format}`,
        record.firstAudio === null ? '—' : milliseconds(record.firstAudio),
        made === null ? '—' : `${made.toFixed(2)} s`,
        made === null ? '—' : `${record.duration.toFixed(1)} s`,
        made === null || !record.duration ? '—' : (made / record.duration).toFixed(3),
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
