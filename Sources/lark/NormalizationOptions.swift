import ArgumentParser

/// `--no-normalize`, shared by `say`, `serve` and `worker`: speak numbers, dates, abbreviations
/// and symbols as espeak-ng reads them (Piper 1.8's exact phonemes) instead of normalizing the
/// text first. For a server or worker it is the default; a request's or job's own `normalize` wins.
struct NormalizationOptions: ParsableArguments {
    @Flag(
        name: .customLong("no-normalize"),
        help: "Do not rewrite numbers, dates, abbreviations and symbols into words before speaking (English voices); Piper 1.8's exact phonemes.")
    var noNormalize = false

    var normalize: Bool { !noNormalize }
}
