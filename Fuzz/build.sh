#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/Targets/*.swift) into .build-fuzz/ with swiftc's
# -sanitize=fuzzer,address: only the modules the targets need (SpeechCore, TextNormalization,
# SSML, Espeak, Phonemizer) and single files of the modules whose other parts need the network
# or the HTTP framework (FormQuery, RequestSwitch, LenientString, PiperVoiceConfig, Catalog).
# Separate from `swift build`, so the main build never carries the fuzzer's instrumentation.
# Rebuilds only what changed since the last build (by file times). Usage: Fuzz/build.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${FUZZ_BUILD_DIR:-.build-fuzz}
mkdir -p "$OUT"
FLAGS=(-parse-as-library -O -g -sanitize=fuzzer,address -swift-version 6 -use-ld=lld -I "$OUT" -I Sources/CEspeakNG)

# MODULE DEPENDENCY... : a module's object and .swiftmodule, when a source is newer.
module() {
  local name=$1; shift
  local sources=(Sources/"$name"/*.swift)
  if [[ -f $OUT/$name.o ]] && [[ -z $(find "${sources[@]}" "$@" -newer "$OUT/$name.o" 2>/dev/null) ]]; then return; fi
  echo "fuzz: compiling $name" >&2
  swiftc "${FLAGS[@]}" -module-name "$name" -wmo -emit-module -emit-module-path "$OUT/$name.swiftmodule" \
    -c -o "$OUT/$name.o" "${sources[@]}"
  # swiftc leaves an unchanged object's time as it was; the next run must see it as new.
  touch "$OUT/$name.o"
}

module SpeechCore
module TextNormalization "$OUT/SpeechCore.o"
module SSML "$OUT/SpeechCore.o"
module Espeak "$OUT/SpeechCore.o"
module Phonemizer "$OUT/Espeak.o"

core=("$OUT/SpeechCore.o")
# TARGET: its sources beyond Fuzz/Targets/TARGET.swift and the objects it links.
declare -A extra=(
  [normalizer]="$OUT/TextNormalization.o"
  [ssml]="$OUT/SSML.o"
  [sentences]=""
  [query]="Sources/LarkServer/FormQuery.swift Sources/LarkServer/RequestSwitch.swift"
  [json]="Sources/LarkServer/RequestSwitch.swift Sources/LarkServer/LenientString.swift"
  [voiceconfig]="Sources/PiperEngine/PiperVoiceConfig.swift $OUT/Phonemizer.o $OUT/Espeak.o -lespeak-ng"
  [catalog]="Sources/VoiceCatalog/Catalog.swift Sources/VoiceCatalog/CatalogError.swift"
  [wyoming]="Sources/WyomingServer/WyomingFrameDecoder.swift Sources/WyomingServer/WyomingEvent.swift Sources/WyomingServer/JSONValue.swift"
)
# The Wyoming decoder reads SwiftNIO's ByteBuffer: NIOCore and what it needs are taken, not
# instrumented, from the debug build (`swift build`, which `make test` runs first).
DEBUG=.build/debug
nio=()
if [[ -f $DEBUG/Modules/NIOCore.o ]]; then
  for c in NIOCore NIOConcurrencyHelpers _NIODataStructures _NIOBase64 Atomics DequeModule InternalCollectionsUtilities ContainersPreview \
      CNIOLinux CNIOAtomics _AtomicsShims; do
    while IFS= read -r object; do nio+=("$object"); done < <(find "$DEBUG/$c.build" -name "*.o")
  done
  nio+=(-I "$DEBUG/Modules")
  for map in "$DEBUG"/*.build/module.modulemap .build/checkouts/swift-atomics/Sources/_AtomicsShims/include/module.modulemap; do
    [[ -f $map ]] && nio+=(-Xcc "-fmodule-map-file=$map")
  done
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(normalizer ssml sentences query json voiceconfig catalog wyoming)
for target in "${targets[@]}"; do
  [[ -v extra[$target] ]] || { echo "fuzz: no target '$target' (have: ${!extra[*]})" >&2; exit 2; }
  binary=$OUT/fuzz-$target
  # shellcheck disable=SC2206  # the list is words: files and flags
  inputs=(Fuzz/Targets/FuzzInput.swift Fuzz/Targets/$target.swift ${extra[$target]})
  files=(); for input in "${inputs[@]}"; do [[ $input == *.swift && -f $input ]] && files+=("$input"); done
  if [[ -f $binary ]] && [[ -z $(find "${files[@]}" "${core[@]}" -newer "$binary") ]]; then continue; fi
  echo "fuzz: linking $target" >&2
  links=("${core[@]}")
  if [[ $target == wyoming ]]; then
    [[ ${#nio[@]} -gt 0 ]] || { echo "fuzz: wyoming needs NIOCore from the debug build: run swift build first" >&2; exit 1; }
    links+=("${nio[@]}")
  fi
  swiftc "${FLAGS[@]}" -module-name "Fuzz_$target" "${inputs[@]}" "${links[@]}" -o "$binary"
done
