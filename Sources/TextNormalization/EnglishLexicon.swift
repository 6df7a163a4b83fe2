/// The word lists English reading rules consult: units, currencies, months, abbreviations, the
/// names that take regnal numbers and the words that announce a Roman numeral.
enum EnglishLexicon {
    struct Unit {
        var singular: String
        var plural: String
        /// Units that are also common words or letters (`s`, `h`, `in`) count only written
        /// against the number ("30s"), never after a space.
        var attachedOnly = false
    }

    /// Unit symbols as written (case matters: `Mb` is megabits, `MB` megabytes).
    static let units: [String: Unit] = {
        var table: [String: Unit] = [:]
        func add(_ symbols: [String], _ singular: String, _ plural: String? = nil, attachedOnly: Bool = false) {
            for symbol in symbols {
                table[symbol] = Unit(singular: singular, plural: plural ?? singular + "s", attachedOnly: attachedOnly)
            }
        }
        add(["mm"], "millimeter"); add(["cm"], "centimeter"); add(["m"], "meter"); add(["km"], "kilometer")
        add(["ft"], "foot", "feet"); add(["yd", "yds"], "yard"); add(["mi"], "mile"); add(["in"], "inch", "inches", attachedOnly: true)
        add(["mg"], "milligram"); add(["g"], "gram"); add(["kg", "kgs"], "kilogram"); add(["lb", "lbs"], "pound")
        add(["oz"], "ounce"); add(["ml", "mL"], "milliliter"); add(["l", "L"], "liter"); add(["gal"], "gallon")
        add(["mph", "MPH"], "mile per hour", "miles per hour"); add(["km/h", "kph", "kmh"], "kilometer per hour", "kilometers per hour")
        add(["m/s"], "meter per second", "meters per second")
        add(["°C", "ºC", "℃"], "degree Celsius", "degrees Celsius"); add(["°F", "ºF", "℉"], "degree Fahrenheit", "degrees Fahrenheit")
        add(["°", "º"], "degree")
        add(["Hz"], "hertz", "hertz"); add(["kHz"], "kilohertz", "kilohertz"); add(["MHz"], "megahertz", "megahertz")
        add(["GHz"], "gigahertz", "gigahertz")
        add(["KB", "kB"], "kilobyte"); add(["MB"], "megabyte"); add(["GB"], "gigabyte"); add(["TB"], "terabyte")
        add(["Mb"], "megabit"); add(["Gb"], "gigabit")
        add(["kbps", "Kbps"], "kilobit per second", "kilobits per second"); add(["Mbps"], "megabit per second", "megabits per second")
        add(["Gbps"], "gigabit per second", "gigabits per second")
        add(["W"], "watt"); add(["kW"], "kilowatt"); add(["MW"], "megawatt"); add(["kWh"], "kilowatt hour"); add(["V"], "volt")
        add(["mAh"], "milliamp hour")
        add(["ms"], "millisecond"); add(["sec", "secs"], "second"); add(["s"], "second", attachedOnly: true)
        add(["min", "mins"], "minute"); add(["hr", "hrs"], "hour"); add(["h"], "hour", attachedOnly: true)
        add(["%"], "percent", "percent")
        return table
    }()

    /// The longest unit symbol, in tokens ("km/h" is three).
    static let longestUnitTokens = 3

    struct Currency {
        var singular: String
        var plural: String
        /// The hundredth's names; nil where the cents are not said apart (yen).
        var minor: (singular: String, plural: String)?
    }

    static let currencies: [String: Currency] = [
        "$": Currency(singular: "dollar", plural: "dollars", minor: ("cent", "cents")),
        "£": Currency(singular: "pound", plural: "pounds", minor: ("penny", "pence")),
        "€": Currency(singular: "euro", plural: "euros", minor: ("cent", "cents")),
        "¥": Currency(singular: "yen", plural: "yen", minor: nil),
        "₹": Currency(singular: "rupee", plural: "rupees", minor: ("paisa", "paise")),
    ]

    /// Scales written after an amount: `$1.5 million`, `$5k`, `€2bn`.
    static let scaleWords: [String: String] = [
        "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
    ]
    static let scaleSuffixes: [String: String] = [
        "k": "thousand", "K": "thousand", "m": "million", "M": "million", "mn": "million", "bn": "billion",
        "B": "billion", "b": "billion", "tn": "trillion", "T": "trillion",
    ]

    static let months = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ]

    /// Month names and their abbreviations, capitalized as written, → month number.
    static let monthNames: [String: Int] = {
        var table: [String: Int] = [:]
        for (index, month) in months.enumerated() {
            table[month] = index + 1
            table[String(month.prefix(3))] = index + 1
        }
        table["Sept"] = 9
        return table
    }()

    /// Abbreviations and how each reads in each place it can stand (tried in this order).
    enum AbbreviationUse {
        /// Before a capitalized name: "Dr. Smith", "St. Louis".
        case title(String)
        /// After a capitalized name or a number: "Elm St.", "5th Ave.".
        case address(String)
        /// After a capitalized name: "King Jr.", "Acme Inc.".
        case afterName(String)
        /// Before a number: "No. 5", "Apt. 4B".
        case beforeNumber(String)
        /// Anywhere (with its period, or without one where `bare`).
        case always(String, bare: Bool)
        /// Between two things, never at a sentence's end: "Smith vs. Jones".
        case between(String)
    }

    static let abbreviations: [String: [AbbreviationUse]] = [
        "Mr": [.title("Mister"), .always("Mister", bare: false)], "Mrs": [.title("Missus"), .always("Missus", bare: false)],
        "Ms": [.title("Miz"), .always("Miz", bare: false)], "Messrs": [.title("Messieurs")],
        "Dr": [.address("Drive"), .title("Doctor")], "St": [.address("Street"), .title("Saint")],
        "Mt": [.title("Mount")], "Ft": [.title("Fort")], "Prof": [.title("Professor")], "Lt": [.title("Lieutenant")],
        "Gen": [.title("General")], "Col": [.title("Colonel")], "Capt": [.title("Captain")], "Sgt": [.title("Sergeant")],
        "Cpl": [.title("Corporal")], "Gov": [.title("Governor")], "Sen": [.title("Senator")],
        "Rep": [.title("Representative")], "Rev": [.title("Reverend")], "Hon": [.title("Honorable")],
        "Pres": [.title("President")], "Adm": [.title("Admiral")], "Maj": [.title("Major")], "Cmdr": [.title("Commander")],
        "Fr": [.title("Father")], "Supt": [.title("Superintendent")],
        "Ave": [.address("Avenue")], "Av": [.address("Avenue")], "Blvd": [.address("Boulevard")], "Rd": [.address("Road")],
        "Ln": [.address("Lane")], "Hwy": [.address("Highway")], "Ct": [.address("Court")], "Pl": [.address("Place")],
        "Sq": [.address("Square")], "Pkwy": [.address("Parkway")], "Ter": [.address("Terrace")], "Cir": [.address("Circle")],
        "Jr": [.afterName("Junior")], "Sr": [.afterName("Senior")], "Inc": [.afterName("Incorporated")],
        "Ltd": [.afterName("Limited")], "Corp": [.afterName("Corporation")], "Co": [.afterName("Company")],
        "Bros": [.afterName("Brothers")], "Esq": [.afterName("Esquire")],
        "No": [.beforeNumber("number")], "no": [.beforeNumber("number")], "Nos": [.beforeNumber("numbers")],
        "nos": [.beforeNumber("numbers")], "Apt": [.beforeNumber("Apartment")], "apt": [.beforeNumber("apartment")],
        "Ste": [.beforeNumber("Suite")], "Vol": [.beforeNumber("Volume")], "vol": [.beforeNumber("volume")],
        "Fig": [.beforeNumber("Figure")], "fig": [.beforeNumber("figure")], "p": [.beforeNumber("page")],
        "pp": [.beforeNumber("pages")], "Ch": [.beforeNumber("Chapter")], "ch": [.beforeNumber("chapter")],
        "Rm": [.beforeNumber("Room")], "ext": [.beforeNumber("extension")], "Ext": [.beforeNumber("Extension")], "Bldg": [.beforeNumber("Building")],
        "vs": [.between("versus")], "etc": [.always("et cetera", bare: true)],
        "approx": [.always("approximately", bare: false)], "dept": [.always("department", bare: false)],
        "Dept": [.always("Department", bare: false)], "govt": [.always("government", bare: false)],
        "misc": [.always("miscellaneous", bare: false)],
    ]

    /// Abbreviations written with a period after each letter: "e.g.", "i.e.", "a.k.a.".
    static let dottedAbbreviations: [String: String] = [
        "e.g": "for example", "i.e": "that is", "a.k.a": "also known as",
    ]

    /// Titles that read without their period too ("Dr Smith", British style).
    static let bareTitles: Set<String> = ["Mr", "Mrs", "Ms", "Dr", "St", "Mt", "Prof"]

    /// Names that take a regnal number: "Henry VIII" is "Henry the Eighth".
    static let regnalNames: Set<String> = [
        "Henry", "Edward", "George", "William", "Elizabeth", "Louis", "Charles", "James", "Richard", "John",
        "Paul", "Pius", "Leo", "Gregory", "Benedict", "Mary", "Victoria", "Peter", "Catherine", "Frederick",
        "Philip", "Alexander", "Nicholas", "Ramesses", "Ramses", "Napoleon", "Constantine", "Innocent", "Clement",
        "Urban", "Alfonso", "Ferdinand", "Gustav", "Gustavus", "Harald", "Olaf", "Wilhelm", "Friedrich", "Ivan",
        "Selim", "Mehmed", "Suleiman", "Boniface", "Sixtus", "Felipe", "Juan", "Carlos", "Stephen", "Anne",
        "David", "Robert", "Malcolm", "Harold", "Matilda", "Isabella", "Leopold", "Francis", "Rudolf", "Otto",
        "Pedro", "Manuel", "Umberto", "Vittorio", "Haakon", "Christian", "Margrethe", "Carl", "Gustaf", "Rama",
        "Farouk", "Hussein", "Abdullah", "Akihito", "Sancho", "Baldwin", "Bohemond", "Tutankhamun", "Thutmose",
        "Amenhotep", "Darius", "Xerxes", "Cyrus", "Antiochus", "Ptolemy", "Cleopatra", "Herod", "Justinian",
        "Theodosius", "Valentinian", "Basil", "Michael", "Romanos", "Andronikos", "Jaime", "Alexios",
    ]

    /// Words after which a Roman numeral is a plain number: "Chapter IV", "World War II".
    static let romanContextWords: Set<String> = [
        "chapter", "part", "volume", "vol", "book", "act", "scene", "section", "phase", "stage", "level", "war",
        "bowl", "article", "title", "grade", "type", "class", "episode", "unit", "schedule", "tier",
        "round", "canto", "psalm", "movement", "division", "league", "vatican", "apollo", "gemini", "mark",
    ]

    /// Words before a four-digit number that make it a year even before a plural noun ("in 1990
    /// prices rose").
    static let yearContextWords: Set<String> = [
        "in", "since", "by", "from", "until", "till", "of", "year", "circa", "before", "after", "during", "early",
        "late", "mid", "spring", "summer", "autumn", "fall", "winter", "around", "between", "through",
    ]

    /// Words ending in s that are not plural nouns (so "1776 was" stays a year).
    static let notPlurals: Set<String> = [
        "was", "is", "has", "his", "its", "as", "this", "thus", "does", "us", "yes", "always", "perhaps", "less",
        "unless", "across", "plus", "minus", "versus", "whereas", "besides", "towards", "afterwards", "hers",
        "ours", "yours", "theirs", "nevertheless", "sometimes", "series", "news", "bus", "gas", "miss", "pass",
    ]

    /// Irregular plural nouns of counting ("1776 people").
    static let irregularPlurals: Set<String> = ["people", "men", "women", "children", "feet", "teeth", "mice", "geese", "persons"]

    /// Words read letter by letter inside web addresses.
    static let spelledInAddresses: Set<String> = ["www", "http", "https", "ftp", "io", "ai", "uk", "us", "tv", "fm", "ly"]

    /// Top-level domains that make "word.tld" a web address.
    static let topLevelDomains: Set<String> = [
        "com", "org", "net", "edu", "gov", "io", "co", "uk", "de", "fr", "ai", "dev", "app", "info", "biz", "us",
        "ca", "au", "me", "tv", "ly", "gg", "eu", "nl", "jp", "ru", "it", "es", "ch", "se", "no", "nz", "in",
    ]

    /// How a symbol inside a web address or e-mail address is read.
    static let addressSymbols: [String: String] = [
        ".": "dot", "/": "slash", ":": "colon", "-": "dash", "_": "underscore", "@": "at", "?": "question mark",
        "=": "equals", "&": "and", "#": "hash", "~": "tilde", "+": "plus", "%": "percent",
    ]

    /// Unicode vulgar fractions.
    static let vulgarFractions: [Character: (numerator: Int, denominator: Int)] = [
        "½": (1, 2), "⅓": (1, 3), "⅔": (2, 3), "¼": (1, 4), "¾": (3, 4), "⅕": (1, 5), "⅖": (2, 5), "⅗": (3, 5),
        "⅘": (4, 5), "⅙": (1, 6), "⅚": (5, 6), "⅛": (1, 8), "⅜": (3, 8), "⅝": (5, 8), "⅞": (7, 8),
    ]

    /// Numbers said digit by digit whatever their context.
    static let digitNames: Set<String> = ["911"]

    /// Words after which a number is a code said digit by digit.
    static let digitContextWords: Set<String> = ["zip", "pin", "ext", "extension", "flight", "account"]

    /// Weekday abbreviations, read out only before a date or a comma ("Fri., Oct. 3rd").
    static let weekdays: [String: String] = [
        "Mon": "Monday", "Tue": "Tuesday", "Tues": "Tuesday", "Wed": "Wednesday", "Thu": "Thursday", "Thur": "Thursday",
        "Thurs": "Thursday", "Fri": "Friday", "Sat": "Saturday", "Sun": "Sunday",
    ]

    /// Pairs of numbers with a slash that are names, not fractions.
    static let slashNames: [String: String] = [
        "24/7": "twenty-four seven", "9/11": "nine eleven", "50/50": "fifty-fifty", "365/24/7": "three sixty-five twenty-four seven",
    ]
}
