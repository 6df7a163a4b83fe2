// "Make a file": jobs through `POST /api/v1/jobs`, followed by polling `GET /api/v1/jobs/{id}`
// every second until the job is succeeded, failed or cancelled. A server without the jobs API
// answers 404 to the list, and the button is then disabled with a note saying so.

import { request, requestJSON, serverError, withKey } from './api.js';

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
const POLL_MILLISECONDS = 1000;

export class Jobs {
  /// `body()` returns the JSON body for a new job (text, voice, format, settings).
  constructor({ button, note, section, list, empty }, body) {
    this.button = button;
    this.note = note;
    this.section = section;
    this.list = list;
    this.empty = empty;
    this.body = body;
    this.items = new Map();
    button.disabled = true;
    button.addEventListener('click', () => this.make().catch(reportError));
  }

  /// Asks the server whether it has jobs, and lists the recent ones if it does.
  async detect() {
    let response;
    try {
      response = await fetch('/api/v1/jobs?limit=20', withKey());
    } catch (error) {
      this.disable(`jobs are unavailable: ${error.message}`);
      return;
    }
    if (response.status === 404) {
      this.disable('jobs are not enabled on this server');
      return;
    }
    if (!response.ok) {
      this.disable(`jobs are unavailable: ${(await serverError(response)).message}`);
      return;
    }
    const { jobs } = await response.json();
    for (const job of jobs.slice().reverse()) {
      this.show(job);
      if (!FINISHED.has(job.status)) this.follow(job.id);
    }
    this.button.disabled = false;
  }

  disable(message) {
    this.button.disabled = true;
    this.note.textContent = message;
    this.note.hidden = false;
    this.section.hidden = true;
  }

  async make() {
    this.button.disabled = true;
    try {
      const job = await requestJSON('/api/v1/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(this.body()),
      });
      this.show(job);
      this.follow(job.id);
    } finally {
      this.button.disabled = false;
    }
  }

  /// Polls one job every second until it is finished; a failed poll is shown, not retried.
  follow(id) {
    const poll = async () => {
      const response = await request(`/api/v1/jobs/${encodeURIComponent(id)}`);
      const job = await response.json();
      this.show(job);
      if (!FINISHED.has(job.status)) setTimeout(() => poll().catch(reportError), POLL_MILLISECONDS);
    };
    setTimeout(() => poll().catch(reportError), POLL_MILLISECONDS);
  }

  show(job) {
    let item = this.items.get(job.id);
    if (!item) {
      item = document.createElement('li');
      this.items.set(job.id, item);
      this.list.prepend(item);
    }
    const title = document.createElement('span');
    title.className = 'job-title';
    const text = job.text_preview || job.id;
    title.textContent = text.length > 60 ? `${text.slice(0, 57)}…` : text;
    const state = document.createElement('span');
    state.className = `job-state state-${job.status}`;
    state.textContent = job.status;
    const parts = [title, state];
    const fraction = progressFraction(job.progress);
    if (fraction !== null && !FINISHED.has(job.status)) {
      const bar = document.createElement('progress');
      bar.max = 1;
      bar.value = fraction;
      bar.setAttribute('aria-label', `progress of ${job.id}`);
      bar.textContent = `${Math.round(fraction * 100)}%`;
      parts.push(bar);
    }
    if (job.status === 'succeeded' && job.audio_url) {
      const link = document.createElement('a');
      link.href = job.audio_url;
      link.textContent = 'Download';
      link.setAttribute('download', '');
      parts.push(link);
    }
    if (job.status === 'failed' && job.error) {
      const error = document.createElement('span');
      error.className = 'job-error';
      error.textContent = job.error;
      parts.push(error);
    }
    item.replaceChildren(...parts);
    this.empty.hidden = this.items.size > 0;
  }
}

/// The job's `progress` (sentences done of sentences in all) as 0…1, or null before it is known.
function progressFraction(progress) {
  if (!progress || !progress.sentences_total) return null;
  return Math.min(1, progress.sentences_done / progress.sentences_total);
}
