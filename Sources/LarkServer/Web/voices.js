// The voice picker: voices from `GET /voices` grouped by language in <optgroup>s, narrowed by a
// filter box, and the speaker picker for multi-speaker voices.

const languageNames = new Intl.DisplayNames(['en'], { type: 'language' });

/// The group a voice belongs to: its primary language subtag, named in English ("en" → English),
/// so Piper's en_US voices and espeak-ng's English voices sit together.
function languageGroup(voice) {
  const code = String(voice.LanguageCode || '').replace('_', '-');
  const primary = code.split('-')[0].toLowerCase();
  let name;
  try {
    name = primary ? languageNames.of(primary) : undefined;
  } catch {
    name = undefined; // not a code Intl knows (espeak-ng has a few of its own)
  }
  const label = name && name !== primary ? name : voice.LanguageName || code || 'Other';
  return { key: label.toLowerCase(), label };
}

function optionLabel(voice) {
  const parts = [voice.Name];
  if (voice.LanguageName && voice.LanguageName !== voice.Name) parts.push(voice.LanguageName);
  if (voice.Quality) parts.push(voice.Quality);
  parts.push(voice.Engine === 'piper' ? 'Piper' : 'espeak-ng');
  if (voice.SpeakerCount > 1) parts.push(`${voice.SpeakerCount} speakers`);
  return parts.join(' · ');
}

function searchText(voice) {
  return [voice.Id, voice.Name, voice.LanguageCode, voice.LanguageName, languageGroup(voice).label, voice.Engine]
    .join(' ')
    .toLowerCase();
}

export class VoicePicker {
  /// `onChange(voice)` is called whenever the selected voice changes (also by filtering).
  constructor({ select, filter, speakerField, speakerSelect, info }, onChange) {
    this.select = select;
    this.filter = filter;
    this.speakerField = speakerField;
    this.speakerSelect = speakerSelect;
    this.info = info;
    this.onChange = onChange;
    this.voices = new Map();
    select.addEventListener('change', () => this.selectionChanged());
    filter.addEventListener('input', () => this.render());
    // Enter in the filter moves on to the list instead of submitting the form (speaking).
    filter.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        select.focus();
      }
    });
  }

  /// Fills the picker; `preferred` ids are tried in order for the first selection.
  setVoices(list, preferred) {
    this.voices = new Map(list.map((voice) => [voice.Id, voice]));
    const initial = preferred.find((id) => id && this.voices.has(id));
    this.render(initial);
  }

  get voice() {
    return this.voices.get(this.select.value);
  }

  /// The speaker to request: its name, or nothing for a single-speaker voice.
  get speaker() {
    return this.speakerSelect.disabled ? undefined : this.speakerSelect.value;
  }

  render(wanted = this.select.value) {
    const query = this.filter.value.trim().toLowerCase();
    const groups = new Map();
    for (const voice of this.voices.values()) {
      if (query && !query.split(/\s+/).every((word) => searchText(voice).includes(word))) continue;
      const group = languageGroup(voice);
      if (!groups.has(group.key)) groups.set(group.key, { label: group.label, voices: [] });
      groups.get(group.key).voices.push(voice);
    }
    const previous = this.select.value;
    this.select.replaceChildren();
    const sorted = [...groups.values()].sort((a, b) => a.label.localeCompare(b.label));
    for (const group of sorted) {
      const optgroup = document.createElement('optgroup');
      optgroup.label = group.label;
      // Piper's neural voices first: they are the reason to run Lark.
      group.voices.sort((a, b) => (a.Engine === 'piper' ? 0 : 1) - (b.Engine === 'piper' ? 0 : 1) || a.Id.localeCompare(b.Id));
      for (const voice of group.voices) {
        optgroup.append(new Option(optionLabel(voice), voice.Id));
      }
      this.select.append(optgroup);
    }
    const count = [...groups.values()].reduce((sum, group) => sum + group.voices.length, 0);
    this.select.disabled = count === 0;
    if (wanted && [...this.select.options].some((option) => option.value === wanted)) {
      this.select.value = wanted;
    }
    this.info.textContent = count === 0 ? 'No voice matches the filter.' : '';
    if (this.select.value !== previous || this.speakerSelect.dataset.voice !== this.select.value) {
      this.selectionChanged();
    }
  }

  selectionChanged() {
    const voice = this.voice;
    this.renderSpeakers(voice);
    if (voice) {
      const rate = `${(voice.SampleRate / 1000).toFixed(voice.SampleRate % 1000 ? 2 : 0)} kHz`;
      this.info.textContent = `${voice.Id} — ${voice.LanguageName || voice.LanguageCode}, ${rate}`;
    }
    this.onChange(voice);
  }

  renderSpeakers(voice) {
    const speakers = voice && voice.Speakers ? voice.Speakers : [];
    this.speakerSelect.dataset.voice = voice ? voice.Id : '';
    this.speakerSelect.replaceChildren(...speakers.map((name, index) => new Option(`${index}: ${name}`, name)));
    const multi = speakers.length > 1;
    this.speakerField.hidden = !multi;
    this.speakerSelect.disabled = !multi;
  }
}
