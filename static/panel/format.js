// Money, numbers and time for people, in the page's language (i18n.js language(): the
// agent's, from <html lang>). Amounts travel as integer minor units with an ISO currency
// and its exponent (every Money object of the API carries `exponent`, from the server's
// one money module); the agent types major units in their locale's notation ("49.99",
// German "49,99" or "1.250,50"), converted here without floating point. Input that two
// readings fit ("1.250" for a currency with three decimals) is refused, never guessed.
// No currency table here: the exponent comes from the server.

import { gettext, interpolate, language, ngettext } from "./i18n.js";

/**
 * Digits after the decimal point: the server's `exponent` when given; without one, what
 * the browser's ISO 4217 data says (Intl), as a last resort.
 */
export function exponent(currency, given) {
  if (Number.isInteger(given) && given >= 0) return given;
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency: String(currency || "").toUpperCase() })
      .resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** The decimal and grouping separators of `lang` ("." and "," in English, "," and "." in German). */
export function separators(lang = language()) {
  const out = { decimal: ".", group: "," };
  try {
    for (const part of new Intl.NumberFormat(lang).formatToParts(1234567.5)) {
      if (part.type === "decimal") out.decimal = part.value;
      if (part.type === "group") out.group = part.value;
    }
  } catch {
    // An unknown language tag: English notation.
  }
  return out;
}

// Spaces (also no-break, narrow no-break and thin) and apostrophes only ever group digits.
const SPACE_MARKS = " \u00a0\u202f\u2009'’";
// Minus signs people and Intl write: hyphen-minus, U+2212 minus, dashes, small and full-width hyphen-minus.
const MINUS = "\\-\u2212\u2012\u2013\u2014\ufe63\uff0d";
// An amount: an optional "(" … ")", minus signs before or after the currency sign, the
// currency sign or code before or after the number, and the number (digits of any script
// here, so that digits other than 0-9 are refused as a number rather than read as a sign).
const AMOUNT = new RegExp(
  String.raw`^(\()?\s*([${MINUS}])?\s*([^\p{Nd}.,\s'’()+${MINUS}]*)\s*([${MINUS}])?\s*` +
    String.raw`([\p{Nd}.,\s'’]*?)\s*([${MINUS}])?\s*([^\p{Nd}.,\s'’()+${MINUS}]*)\s*([${MINUS}])?\s*(\))?$`,
  "u",
);

/** What may stand beside an amount of `code`: its code and the symbols Intl writes for it ("$", "€", "¥"). */
function currencySigns(code, lang) {
  const signs = new Set([code]);
  for (const locale of [lang, "en-US"]) {
    for (const currencyDisplay of ["symbol", "narrowSymbol"]) {
      try {
        const parts = new Intl.NumberFormat(locale, { style: "currency", currency: code, currencyDisplay }).formatToParts(1);
        const sign = parts.find((part) => part.type === "currency");
        if (sign) signs.add(sign.value);
      } catch {
        // An unknown language or currency: the code alone.
      }
    }
  }
  return signs;
}

/** The whole and fraction digits of `text` read with `decimal` as the decimal mark and `group` grouping, or null. */
function reading(text, decimal, group) {
  let head = text;
  let fraction = "";
  if (decimal) {
    const parts = text.split(decimal);
    if (parts.length !== 2 || !/^\d+$/.test(parts[1])) return null;
    [head, fraction] = parts;
  }
  if (group) {
    // Groups of three after a first group of one to three digits that is not a zero
    // ("0.500" and "0.250.000" are never thousands).
    const groups = head.split(group);
    if (!/^[1-9]\d{0,2}$/.test(groups[0]) || groups.slice(1).some((g) => !/^\d{3}$/.test(g))) return null;
    return { whole: groups.join(""), fraction };
  }
  if (!/^\d*$/.test(head) || (head === "" && !decimal)) return null;
  return { whole: head || "0", fraction };
}

/**
 * The whole and fraction digits of `text` (sign and currency already removed), read in
 * `lang`'s notation: {whole, fraction}, {error: "malformed"} or, when two readings fit
 * the currency's `digits`, {error: "ambiguous", readings}. At most one decimal mark, one
 * kind of grouping mark, and no mark at the end or twice in a row: anything else is
 * refused, never guessed.
 */
function readNumber(text, digits, lang) {
  const { decimal: localeDecimal } = separators(lang);
  const allowed = new RegExp(`^[0-9.,${SPACE_MARKS}]+$`);
  if (!allowed.test(text) || !/\d/.test(text) || /\D\D/.test(text) || /\D$/.test(text)) return { error: "malformed" };
  const marks = text.replace(/\d/g, "");
  if (SPACE_MARKS.includes(text[0])) return { error: "malformed" };
  const kinds = [...new Set(marks)];
  const count = (mark) => marks.split(mark).length - 1;
  const last = marks.at(-1);
  const options = [];
  if (kinds.length === 0) options.push([null, null]);
  if (kinds.length === 1 && !(kinds[0] === localeDecimal && count(kinds[0]) === 1)) {
    // One kind of mark as grouping; never the page's decimal mark written once ("1.250" in English is 1.25).
    options.push([null, kinds[0]]);
  }
  if (last && !SPACE_MARKS.includes(last) && count(last) === 1 && kinds.length <= 2) {
    // The last mark, written once, as the decimal mark; the other kind (if any) groups digits.
    options.push([last, kinds.find((kind) => kind !== last) || null]);
  }
  const valid = options.map(([dec, grp]) => reading(text, dec, grp)).filter(Boolean);
  if (valid.length === 0) return { error: "malformed" };
  const fitting = valid.filter((r) => r.fraction.length <= digits);
  if (fitting.length > 1) return { error: "ambiguous", readings: fitting };
  return fitting[0] || valid[0];
}

function minorOf(read, digits) {
  const whole = read.whole.replace(/^0+(?=\d)/, "");
  return Number(whole + read.fraction.padEnd(digits, "0"));
}

/**
 * Parse what an agent typed ("50", "1,250.5", "$50.00"; in German "49,99", "1.250,50 €")
 * into minor units of `currency`, which has `exp` decimals (the Money JSON's `exponent`).
 * Returns {ok: true, minor} or {ok: false, error}. Negative amounts in any notation
 * ("-5", "$-5", "−5,00", "(5.00)"), another currency's sign, digits other than 0-9 and
 * anything with two readings are refused.
 */
export function parseMajor(text, currency, exp, lang = language()) {
  const digits = exponent(currency, exp);
  const code = String(currency || "").toUpperCase();
  const example = `49${separators(lang).decimal}99`;
  const malformed = { ok: false, error: interpolate(gettext("Enter a number, such as 50 or %(example)s."), { example }, true) };
  const parts = AMOUNT.exec(String(text ?? "").trim());
  if (!parts) return malformed;
  const [, open, minus1, before, minus2, number, minus3, after, minus4, close] = parts;
  const signs = currencySigns(code, lang);
  const foreign = [before, after].filter((sign) => sign && !signs.has(sign) && sign.toUpperCase() !== code);
  if (!/\p{Nd}/u.test(number) && !/[.,]/.test(number)) {
    return foreign.length ? malformed : { ok: false, error: gettext("Enter an amount.") };
  }
  if (Boolean(open) !== Boolean(close)) return malformed;
  if (open || minus1 || minus2 || minus3 || minus4) return { ok: false, error: gettext("Enter a positive amount.") };
  if (foreign.length) {
    // A currency sign or code ("€50" for a USD charge) is named; other words are just not a number.
    if (!foreign.every((sign) => /\p{Sc}/u.test(sign) || /^[A-Za-z]{3}$/.test(sign))) return malformed;
    return {
      ok: false,
      error: interpolate(gettext("This amount is in %(currency)s: type it without another currency’s sign."), { currency: code }, true),
    };
  }
  const read = readNumber(number, digits, lang);
  if (read.error === "ambiguous") {
    const [first, second] = read.readings.map((r) => formatMoney(minorOf(r, digits), code, digits, lang));
    const [thousands, decimal] = read.readings[0].fraction ? [second, first] : [first, second];
    return {
      ok: false,
      error: interpolate(
        gettext("“%(text)s” could mean %(thousands)s or %(decimal)s: type the amount without a thousands separator."),
        { text: number, thousands, decimal },
        true,
      ),
    };
  }
  if (read.error) return malformed;
  if (read.fraction.length > digits) {
    return {
      ok: false,
      error:
        digits === 0
          ? interpolate(gettext("%(currency)s has no decimals: enter a whole amount."), { currency: code }, true)
          : interpolate(
            ngettext("%(currency)s has at most %(count)s decimal.", "%(currency)s has at most %(count)s decimals.", digits),
            { currency: code, count: digits },
            true,
          ),
    };
  }
  const minor = minorOf(read, digits);
  if (!Number.isSafeInteger(minor)) return { ok: false, error: gettext("That amount is too large.") };
  if (minor === 0) return { ok: false, error: gettext("Enter an amount above zero.") };
  return { ok: true, minor };
}

/** Minor units → major units with a "." ("50.00", "5000" for JPY): for arithmetic and Intl. */
function plainMajor(minor, digits) {
  const text = String(Math.abs(minor)).padStart(digits + 1, "0");
  const sign = minor < 0 ? "-" : "";
  if (digits === 0) return sign + text;
  return `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

/**
 * Minor units → the major-unit string an input field shows, with the page language's
 * decimal separator and no grouping ("50.00"; German "50,00"; "5000" for JPY):
 * parseMajor reads it back exactly.
 */
export function toMajorString(minor, currency, exp, lang = language()) {
  const text = plainMajor(minor, exponent(currency, exp));
  const { decimal } = separators(lang);
  return decimal === "." ? text : text.replace(".", decimal);
}

/** Minor units for people ("$2,400.00", "¥5,000"; German "2.400,00 $"), with `exp` decimals. */
export function formatMoney(minor, currency, exp, lang = language()) {
  if (minor === null || minor === undefined || !currency) return "—";
  const code = currency.toUpperCase();
  const digits = exponent(code, exp);
  try {
    return new Intl.NumberFormat(lang, {
      style: "currency",
      currency: code,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(Number(plainMajor(minor, digits)));
  } catch {
    return `${plainMajor(minor, digits)} ${code}`;
  }
}

/** A Money object of the API ({amount, currency, exponent, display}) for people. */
export function money(value) {
  if (!value) return "—";
  return value.display || formatMoney(value.amount, value.currency, value.exponent);
}

/** "$49.00 on Jan 5, 2026": an amount and the day it falls on. */
export function amountOn(value, day) {
  return interpolate(gettext("%(amount)s on %(date)s"), { amount: money(value), date: day }, true);
}

/** "$49.00/month" (German "49,00 $/Monat"). */
export function perInterval(amount, interval) {
  const text = {
    day: gettext("%(amount)s/day"),
    week: gettext("%(amount)s/week"),
    month: gettext("%(amount)s/month"),
    year: gettext("%(amount)s/year"),
  }[interval || "month"];
  return text ? interpolate(text, { amount }, true) : `${amount}/${interval}`;
}

/** A count in the page's notation ("1,250"; German "1.250"). */
export function number(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value ?? "");
  try {
    return new Intl.NumberFormat(language()).format(n);
  } catch {
    return String(n);
  }
}

/** A percentage given in percent ("25%"; German "25 %"), up to two decimals. */
export function percent(value) {
  const n = Number(value);
  if (!Number.isFinite(n)) return `${value}%`;
  try {
    return new Intl.NumberFormat(language(), { style: "percent", maximumFractionDigits: 2 }).format(n / 100);
  } catch {
    return `${n}%`;
  }
}

export function dayCount(n) {
  return interpolate(ngettext("%(count)s day", "%(count)s days", n), { count: n }, true);
}

export function monthCount(n) {
  return interpolate(ngettext("%(count)s month", "%(count)s months", n), { count: n }, true);
}

export function parseDate(value) {
  if (!value) return null;
  const text = String(value).trim();
  const date = new Date(/^\d{4}-\d{2}-\d{2} /.test(text) ? text.replace(" ", "T") : text);
  return Number.isNaN(date.getTime()) ? null : date;
}

function calendarDay(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(value));
  return m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
}

function isEnglish(lang) {
  return /^en\b/i.test(lang);
}

/** "2026-01-28" → "Jan 28, 2026" (German "28.01.2026"); calendar dates: no time zone shift. */
export function longDate(value, lang = language()) {
  if (!value) return "—";
  const day = calendarDay(value);
  if (!day) return String(value);
  try {
    return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeZone: "UTC" }).format(day);
  } catch {
    return isoDate(value);
  }
}

export function isoDate(value) {
  if (!value) return "—";
  const m = /^(\d{4}-\d{2}-\d{2})/.exec(String(value));
  return m ? m[1] : String(value);
}

/** A calendar date in lists: ISO in English ("2026-01-28"), the locale's numeric date elsewhere ("28.01.2026"). */
export function shortDate(value, lang = language()) {
  if (!value || isEnglish(lang)) return isoDate(value);
  const day = calendarDay(value);
  if (!day) return String(value);
  try {
    return new Intl.DateTimeFormat(lang, { year: "numeric", month: "2-digit", day: "2-digit", timeZone: "UTC" }).format(day);
  } catch {
    return isoDate(value);
  }
}

/** "just now", "3 minutes ago", "2 hours ago", "4 days ago" (German "vor 3 Minuten"). */
export function age(value, now = new Date(), lang = language()) {
  const date = parseDate(value);
  if (!date) return "";
  const seconds = Math.max(0, Math.round((now.getTime() - date.getTime()) / 1000));
  if (seconds < 45) return gettext("just now");
  const minutes = Math.round(seconds / 60);
  const hours = Math.round(minutes / 60);
  const [amount, unit] = minutes < 60 ? [minutes, "minute"] : hours < 48 ? [hours, "hour"] : [Math.round(hours / 24), "day"];
  try {
    return new Intl.RelativeTimeFormat(lang, { numeric: "always" }).format(-amount, unit);
  } catch {
    return `${amount} ${unit}s ago`;
  }
}

/** A moment in the browser's time zone: "2026-01-28 14:05" in English, the locale's form elsewhere ("28.01.2026, 14:05"). */
export function dateTime(value, lang = language()) {
  const date = parseDate(value);
  if (!date) return "—";
  if (!isEnglish(lang)) {
    try {
      return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(date);
    } catch {
      // fall through to the ISO-like form
    }
  }
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function capitalize(text) {
  const s = String(text || "");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function humanize(key) {
  return capitalize(String(key || "").replace(/_/g, " "));
}
