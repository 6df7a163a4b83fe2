// Wires the page: loads the voices, keeps the settings in step with the chosen voice, and
// hands Speak, Stop, keyboard shortcuts and "Make a file" to the player and the jobs list.

import { apiKey, downloadWithKey, onKeyNeeded, rememberApiKey, requestJSON } from './api.js';
import { Jobs } from './jobs.js';
import { Player } from './player.js';
import { VoicePicker } from './voices.js';

const $ = (id) => document.getElementById(id);

/// The formats offered (those Chromium plays while they download), their files and MIME types.
const FORMATS = {
  mp3: { extension: 'mp3', mime: 'audio/mpeg' },
  ogg_opus: { extension: 'opus', mime: 'audio/ogg; codecs=opus' },
  ogg_vorbis: { extension: 'ogg', mime: 'audio/ogg; codecs=vorbis' },
  wav: { extension: 'wav', mime: 'audio/wav' },
  flac: { extension: 'flac', mime: 'audio/flac' },
  aac: { extension: 'aac', mime: 'audio/aac' },
};

const text = $('text');
const format = $('format');
const download = $('download');
const speakButton = $('speak');
const sliders = ['length-scale', 'noise-scale', 'noise-w'].map((id) => ({ input: $(id), output: $(`${id}-value`) }));
const [lengthScale, noiseScale, noiseW] = sliders.map((slider) => slider.input);

const player = new Player({ reading: $('reading'), status: $('status'), historyBody: $('history').tBodies[0], stopButton: $('stop') });
// For scripts that drive the page, such as the browser test.
window.larkPlayer = player;
const picker = new VoicePicker(
  { select: $('voice'), filter: $('voice-filter'), speakerField: $('speaker-field'), speakerSelect: $('speaker'), info: $('voice-info') },
  (voice) => voiceChanged(voice),
);
const jobs = new Jobs(
  { button: $('make-file'), note: $('jobs-note'), section: $('jobs-section'), list: $('jobs'), empty: $('jobs-empty') },
  () => jobBody(),
);

/// The voice's own settings (from its config's `inference` block, sent by `/voices`); noise does
/// not apply to espeak-ng voices, which have none.
function applyVoiceDefaults(voice) {
  lengthScale.value = voice && voice.LengthScale !== undefined ? voice.LengthScale : 1;
  const hasNoise = Boolean(voice) && voice.NoiseScale !== undefined;
  noiseScale.value = hasNoise ? voice.NoiseScale : 0;
  noiseW.value = hasNoise && voice.NoiseW !== undefined ? voice.NoiseW : 0;
  noiseScale.disabled = !hasNoise;
  noiseW.disabled = !hasNoise;
  showSliderValues();
}

function voiceChanged(voice) {
  applyVoiceDefaults(voice);
  speakButton.disabled = !voice;
  if (voice) remember('lark.voice', voice.Id);
}

function showSliderValues() {
  // Noise settings come with three decimals in voice configs (0.667).
  for (const { input, output } of sliders) output.value = Number(input.value).toFixed(input === lengthScale ? 2 : 3);
}

/// The `/read` query for the current text and settings.
function readParameters() {
  const voice = picker.voice;
  const parameters = new URLSearchParams({ text: text.value, voiceId: voice.Id, outputFormat: format.value });
  if (picker.speaker !== undefined) parameters.set('speaker', picker.speaker);
  parameters.set('length_scale', lengthScale.value);
  if (!noiseScale.disabled) {
    parameters.set('noise_scale', noiseScale.value);
    parameters.set('noise_w', noiseW.value);
  }
  return parameters;
}

/// The same request as a job body or a speech body (Lark's `/api/v1/speech` field names).
function jobBody() {
  const parameters = readParameters();
  const body = { text: text.value, voice: parameters.get('voiceId'), format: parameters.get('outputFormat') };
  for (const name of ['speaker', 'length_scale', 'noise_scale', 'noise_w']) {
    if (parameters.has(name)) body[name] = name === 'speaker' ? parameters.get(name) : Number(parameters.get(name));
  }
  return body;
}

function speak() {
  if (!text.value.trim()) {
    $('status').textContent = 'Type some text first.';
    text.focus();
    return;
  }
  if (!picker.voice) return;
  // Played from the NDJSON stream as raw PCM at the voice's rate; the format chosen is the download's.
  player.speak(jobBody(), picker.voice.SampleRate, { voice: picker.voice.Id, format: 'stream' }).catch(reportError);
  const url = `/read?${readParameters()}`;
  download.href = url;
  download.download = `lark-${picker.voice.Id.replace(/[^\w.-]+/g, '_')}.${FORMATS[format.value].extension}`;
  download.hidden = false;
}

/// Formats this browser cannot play stay downloadable through jobs, but are not offered here.
function markUnplayableFormats() {
  const probe = new Audio();
  for (const option of format.options) {
    if (probe.canPlayType(FORMATS[option.value].mime) === '') {
      option.disabled = true;
      option.textContent += ' (not playable in this browser)';
    }
  }
  if (format.selectedOptions[0].disabled) format.value = [...format.options].find((option) => !option.disabled).value;
}

function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Storage may be off (private windows); the choice is just not remembered.
  }
}

function recall(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

async function start() {
  speakButton.disabled = true;
  markUnplayableFormats();
  for (const { input } of sliders) input.addEventListener('input', showSliderValues);
  $('reset-settings').addEventListener('click', () => applyVoiceDefaults(picker.voice));
  $('speak-form').addEventListener('submit', (event) => {
    event.preventDefault();
    speak();
  });
  $('stop').addEventListener('click', () => player.stop());
  text.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      speak();
    }
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') player.stop();
  });

  // A server with keys answers 401 until the page has one: ask, keep it, and start again with it.
  const keyForm = $('key-form');
  onKeyNeeded(() => {
    keyForm.hidden = false;
    $('api-key').focus();
  });
  keyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('api-key').value.trim();
    if (!key) return;
    rememberApiKey(key);
    location.reload();
  });
  // Links to audio (the download, a job's file) carry no header: with a key, fetch them with it.
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a[download]');
    if (!link || !apiKey() || link.href.startsWith('blob:') || link.getAttribute('href') === '#') return;
    event.preventDefault();
    downloadWithKey(link).catch(reportError);
  });

  jobs.detect().catch(reportError);
  // `/readyz` names the server's default voice; a server still loading it answers 503.
  const [voices, ready] = await Promise.all([requestJSON('/voices'), requestJSON('/readyz').catch(() => null)]);
  const firstPiper = voices.find((voice) => voice.Engine === 'piper');
  picker.setVoices(voices, [recall('lark.voice'), ready && ready.voice, firstPiper && firstPiper.Id, voices[0] && voices[0].Id]);
  // Says the page is usable (voices listed), for scripts that drive it, such as the browser test.
  document.body.dataset.ready = 'true';
}

start().catch((error) => {
  $('status').textContent = 'The voices could not be loaded.';
  reportError(error);
});
