import Testing
@testable import SpeechCore

@Suite struct SentenceSegmenterTests {
    @Test func splitsAfterTerminalPunctuation() {
        #expect(SentenceSegmenter.sentences(in: "Hello world. How are you? Fine!") == ["Hello world.", "How are you?", "Fine!"])
    }

    @Test func keepsClosingQuotesAndDecimals() {
        #expect(SentenceSegmenter.sentences(in: "He said \"stop.\" Then 3.5 more.") == ["He said \"stop.\"", "Then 3.5 more."])
    }

    @Test func splitsOnLineBreaksBetweenSentences() {
        #expect(SentenceSegmenter.sentences(in: "Title\nSecond line\nand its end") == ["Title", "Second line\nand its end"])
    }

    @Test func emptyTextHasNoSentences() {
        #expect(SentenceSegmenter.sentences(in: "  \n ").isEmpty)
    }
}
