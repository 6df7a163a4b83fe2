/// Which word of the text each phoneme of a clause belongs to.
///
/// espeak-ng translates a clause as a whole, and its phoneme words need not be the text's:
/// it joins some ("of the" → `ʌvðə`) and expands others ("1984" → `nˈaɪntiːnhˈʌndɹɪd ˈeɪɾi
/// fˈoːɹ`). Each text word is translated alone as well, and the clause's sounds are aligned with
/// the words' sounds in order (an edit-distance alignment, so that the small differences context
/// makes, `ðə`/`ði`, do not matter): a phoneme belongs to the word whose sound it lines up with.
/// Stress marks go with the sound after them; spaces and punctuation belong to no word.
public enum WordAlignment {
    /// For each of `clause`'s phonemes (code points as Piper splits them), the index into
    /// `words` (each word's phonemes, translated alone) of the word it belongs to, or nil.
    public static func owners(of clause: [String], words: [[String]]) -> [Int?] {
        let sounds = clause.indices.filter { isSound(clause[$0]) }
        var target: [(phoneme: String, word: Int)] = []
        for (word, phonemes) in words.enumerated() {
            for phoneme in phonemes where isSound(phoneme) { target.append((phoneme, word)) }
        }
        var owners = [Int?](repeating: nil, count: clause.count)
        guard !sounds.isEmpty, !target.isEmpty else { return owners }

        // Edit distance between the two sound sequences; ties prefer a diagonal step.
        let rows = sounds.count + 1, columns = target.count + 1
        var cost = [Int32](repeating: 0, count: rows * columns)
        for i in 0..<rows { cost[i * columns] = Int32(i) }
        for j in 0..<columns { cost[j] = Int32(j) }
        for i in 1..<rows {
            let phoneme = clause[sounds[i - 1]]
            for j in 1..<columns {
                let substitution = cost[(i - 1) * columns + j - 1] + (phoneme == target[j - 1].phoneme ? 0 : 1)
                let deletion = cost[(i - 1) * columns + j] + 1
                let insertion = cost[i * columns + j - 1] + 1
                cost[i * columns + j] = min(substitution, deletion, insertion)
            }
        }
        var i = rows - 1, j = columns - 1
        while i > 0, j > 0 {
            let here = cost[i * columns + j]
            let phoneme = clause[sounds[i - 1]]
            if here == cost[(i - 1) * columns + j - 1] + (phoneme == target[j - 1].phoneme ? 0 : 1) {
                owners[sounds[i - 1]] = target[j - 1].word
                i -= 1
                j -= 1
            } else if here == cost[(i - 1) * columns + j] + 1 {
                i -= 1
            } else {
                j -= 1
            }
        }
        fillGaps(&owners, clause: clause)
        return owners
    }

    /// Sounds left unaligned take the owner of a neighbour in the same phoneme word (the one
    /// before, else the one after); stress marks take the owner of the sound after them.
    private static func fillGaps(_ owners: inout [Int?], clause: [String]) {
        var groupStart = 0
        for end in clause.indices where clause[end] == " " || end == clause.count - 1 {
            let group = groupStart..<(clause[end] == " " ? end : end + 1)
            groupStart = end + 1
            guard !group.isEmpty else { continue }
            var previous: Int?
            for index in group where isSound(clause[index]) {
                if let owner = owners[index] { previous = owner } else { owners[index] = previous }
            }
            var next: Int?
            for index in group.reversed() {
                if isSound(clause[index]) {
                    if let owner = owners[index] { next = owner } else { owners[index] = next }
                } else if isStress(clause[index]) {
                    owners[index] = next
                }
            }
        }
    }

    static func isStress(_ phoneme: String) -> Bool { phoneme == "ˈ" || phoneme == "ˌ" }

    /// Whether a phoneme is a sound of a word (not a space, stress mark or punctuation).
    static func isSound(_ phoneme: String) -> Bool {
        !isStress(phoneme) && !nonSounds.contains(phoneme)
    }

    private static let nonSounds: Set<String> = [" ", ".", ",", ";", ":", "!", "?", "-", "\u{2016}", "¡", "¿", "—", "…"]
}
