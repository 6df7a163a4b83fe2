import AudioEncoding
@testable import LarkServer
import Testing

/// The OpenAI and Polly doors' own rules, without a server: voice name maps, Polly's sample
/// rates per format, its character count and language codes, and the paths each door answers for.
@Suite struct FrontDoorTests {
    @Test func voiceNameMapsTakeNameEqualsVoiceAndSpeaker() {
        var map = VoiceNameMap()
        let added = [map.add("Nova=en_US-libritts-high#p123"), map.add("alloy=espeak-ng:en-us")]
        #expect(added == [true, true])
        #expect(map["NOVA"] == MappedVoice(voice: "en_US-libritts-high", speaker: "p123"))
        #expect(map["alloy"] == MappedVoice(voice: "espeak-ng:en-us"))
        for bad in ["nova", "=voice", "nova=", "nova=#3", "nova=voice#"] {
            let taken = map.add(bad)
            #expect(!taken, "\(bad) was taken")
        }
        #expect(map.entries.count == 2)
    }

    @Test func pollySampleRatesFollowPollysRulesPerFormat() throws {
        #expect(try PollyController.sampleRate(nil, outputFormat: "pcm", format: .pcm) == 16000)
        #expect(try PollyController.sampleRate("8000", outputFormat: "pcm", format: .pcm) == 8000)
        #expect(throws: PollyError.self) { try PollyController.sampleRate("22050", outputFormat: "pcm", format: .pcm) }
        #expect(try PollyController.sampleRate(nil, outputFormat: "mp3", format: .mp3) == 22050)
        #expect(try PollyController.sampleRate(nil, outputFormat: "ogg_vorbis", format: .oggVorbis) == 22050)
        #expect(try PollyController.sampleRate(nil, outputFormat: "ogg_opus", format: .oggOpus) == 48000)
        #expect(throws: PollyError.self) { try PollyController.sampleRate("22050", outputFormat: "ogg_opus", format: .oggOpus) }
        #expect(throws: PollyError.self) { try PollyController.sampleRate("44100", outputFormat: "mp3", format: .mp3) }
        #expect(throws: PollyError.self) { try PollyController.sampleRate("fast", outputFormat: "mp3", format: .mp3) }
        #expect(try PollyController.sampleRate(nil, outputFormat: "mulaw", format: .mulawRaw) == 8000)
        // Lark's own formats keep their own rates and defaults.
        #expect(try PollyController.sampleRate(nil, outputFormat: "flac", format: .flac) == nil)
        #expect(try PollyController.sampleRate("44100", outputFormat: "flac", format: .flac) == 44100)
    }

    @Test func pollyCountsCharactersOutsideTagsAndWritesItsLanguageCodes() {
        #expect(PollyController.charactersOutsideTags("<speak>Hi <break time=\"1s\"/>there.</speak>") == 9)
        #expect(PollyController.charactersOutsideTags("plain") == 5)
        #expect(PollyController.pollyLanguageCode("en_US") == "en-US")
        #expect(PollyController.pollyLanguageCode("en-us") == "en-US")
        #expect(PollyController.pollyLanguageCode("de") == "de")
        #expect(PollyController.pollyLanguageCode("cmn-latn-pinyin") == "cmn-latn-pinyin")
        #expect(PollyController.primaryLanguage("en-GB") == PollyController.primaryLanguage("en_US"))
        #expect(PollyController.format("mulaw") == .mulawRaw && PollyController.format("ogg_vorbis") == .oggVorbis)
        #expect(PollyController.format("json") == nil)
    }

    @Test func voicesNextTokensRoundTripAndRefuseStrangers() {
        #expect(PollyController.offset(fromToken: PollyController.token(forOffset: 50)) == 50)
        #expect(PollyController.offset(fromToken: "bogus") == nil)
        #expect(PollyController.offset(fromToken: PollyController.token(forOffset: -1)) == nil)
    }

    @Test func eachDoorOwnsItsPaths() {
        #expect(OpenAIController.owns("/v1/audio/speech") && OpenAIController.owns("/v1/models/tts-1"))
        #expect(!OpenAIController.owns("/v1/speech") && !OpenAIController.owns("/api/v1/speech"))
        #expect(PollyController.owns("/v1/speech") && PollyController.owns("/v1/synthesisTasks/abc") && PollyController.owns("/v1/voices"))
        #expect(!PollyController.owns("/voices") && !PollyController.owns("/v1/models"))
    }

    @Test func sharedErrorsTakeEachDoorsNames() {
        let busy = APIError.busy(retryAfter: 1)
        let openAI = OpenAIError(busy)
        #expect(openAI.status == .serviceUnavailable && openAI.type == "server_error" && openAI.headers[.retryAfter] == "1")
        let polly = PollyError(busy)
        #expect(polly.type == "ThrottlingException" && polly.status == .serviceUnavailable && polly.headers[.retryAfter] == "1")
        #expect(PollyError(APIError(.contentTooLarge, code: "text_too_long", message: "long")).type == "TextLengthExceededException")
        #expect(PollyError(APIError(.notFound, code: "unknown_voice", message: "who")).type == "ValidationException")
        #expect(PollyError(APIError(.internalServerError, code: "internal_error", message: "oops")).type == "ServiceFailureException")
        let unknownVoice = OpenAIError(APIError(.notFound, code: "unknown_voice", message: "who"))
        #expect(unknownVoice.param == "voice" && unknownVoice.type == "not_found_error")
    }
}
