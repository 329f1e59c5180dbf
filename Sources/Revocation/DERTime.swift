import SwiftASN1

import Foundation

/// Times as X.509 and OCSP encode them: whole seconds, UTC.
enum DERTime {
    /// The calendar fields of a time, in UTC (proleptic Gregorian; days from civil, H. Hinnant).
    static func fields(_ date: Date) -> (year: Int, month: Int, day: Int, hours: Int, minutes: Int, seconds: Int) {
        let total = Int(date.timeIntervalSince1970.rounded(.down))
        let days = total >= 0 ? total / 86400 : (total - 86399) / 86400
        let secondOfDay = total - days * 86400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, secondOfDay / 3600, secondOfDay % 3600 / 60, secondOfDay % 60)
    }

    /// A GeneralizedTime of whole seconds (OCSP's only time type).
    static func generalized(_ date: Date) throws -> GeneralizedTime {
        let f = fields(date)
        return try GeneralizedTime(
            year: f.year, month: f.month, day: f.day, hours: f.hours, minutes: f.minutes, seconds: f.seconds,
            fractionalSeconds: 0)
    }

    /// RFC 5280 `Time`: UTCTime through 2049, GeneralizedTime from 2050.
    static func serializeTime(_ date: Date, into coder: inout DER.Serializer) throws {
        let f = fields(date)
        if f.year >= 1950 && f.year < 2050 {
            try coder.serialize(
                UTCTime(year: f.year, month: f.month, day: f.day, hours: f.hours, minutes: f.minutes, seconds: f.seconds))
        } else {
            try coder.serialize(generalized(date))
        }
    }
}
