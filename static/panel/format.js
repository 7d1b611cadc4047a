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

// Spaces (also no-break and narrow no-break) and apostrophes only ever group digits.
const SPACE_GROUPS = /(\d)[\s\u00a0\u202f'’](?=\d)/g;

/** Digits grouped by `sep` in threes ("1.250.000"), as one digit string; null when not. */
function ungroup(text, sep) {
  const parts = text.split(sep);
  if (!/^\d{1,3}$/.test(parts[0]) || parts.slice(1).some((p) => !/^\d{3}$/.test(p))) return null;
  return parts.join("");
}

/**
 * The whole and fraction digits of `text` (sign and currency already removed), read in
 * `lang`'s notation: {whole, fraction} or {error} (malformed or ambiguous).
 */
function readNumber(text, digits, lang) {
  const { decimal, group } = separators(lang);
  const cleaned = text.replace(SPACE_GROUPS, "$1");
  if (!/^[\d.,]+$/.test(cleaned) || !/\d/.test(cleaned)) return { error: "malformed" };
  const dots = cleaned.split(".").length - 1;
  const commas = cleaned.split(",").length - 1;
  if (dots && commas) {
    // Both marks: the last one is the decimal separator (once), the other groups digits.
    const dec = cleaned.lastIndexOf(".") > cleaned.lastIndexOf(",") ? "." : ",";
    const grp = dec === "." ? "," : ".";
    const [head, fraction, extra] = cleaned.split(dec);
    if (extra !== undefined || !/^\d*$/.test(fraction)) return { error: "malformed" };
    const whole = ungroup(head, grp);
    return whole === null ? { error: "malformed" } : { whole, fraction };
  }
  if (!dots && !commas) return { whole: cleaned, fraction: "" };
  const mark = dots ? "." : ",";
  const count = dots || commas;
  if (count > 1) {
    // The same mark several times can only group digits ("1.250.000").
    const whole = ungroup(cleaned, mark);
    return whole === null ? { error: "malformed" } : { whole, fraction: "" };
  }
  const [head, tail] = cleaned.split(mark);
  if (head === "" && tail === "") return { error: "malformed" };
  if (mark === decimal) return { whole: head || "0", fraction: tail };
  // The other mark once. Followed by exactly three digits it may group thousands
  // ("1.250" in German) or, where a currency has three decimals, end the amount: two
  // readings, so it is refused. Otherwise only one reading is possible.
  const grouping = mark === group && head !== "" && /^\d{1,3}$/.test(head) && /^\d{3}$/.test(tail);
  const asDecimal = tail.length <= digits;
  if (tail.length === 3 && /^\d{1,3}$/.test(head) && asDecimal) return { error: "ambiguous", head, tail };
  if (grouping || (tail.length === 3 && /^\d{1,3}$/.test(head))) return { whole: head + tail, fraction: "" };
  return { whole: head || "0", fraction: tail };
}

/**
 * Parse what an agent typed ("50", "1,250.5", "$50.00"; in German "49,99", "1.250,50 €")
 * into minor units of `currency`, which has `exp` decimals (the Money JSON's `exponent`).
 * Returns {ok: true, minor} or {ok: false, error}.
 */
export function parseMajor(text, currency, exp, lang = language()) {
  const digits = exponent(currency, exp);
  const code = String(currency || "").toUpperCase();
  const trimmed = String(text ?? "")
    .trim()
    .replace(/^[^\d.,-]+/, "")
    .replace(/[^\d.,]+$/, "")
    .trim();
  if (trimmed === "" || trimmed === "-") return { ok: false, error: gettext("Enter an amount.") };
  if (trimmed.startsWith("-")) return { ok: false, error: gettext("Enter a positive amount.") };
  const read = readNumber(trimmed, digits, lang);
  if (read.error === "ambiguous") {
    const decimalReading = `${read.head}${separators(lang).decimal}${read.tail}`;
    return {
      ok: false,
      error: interpolate(
        gettext("“%(text)s” could mean %(thousands)s or %(decimal)s: type the amount without a thousands separator."),
        {
          text: trimmed,
          thousands: formatMoney(Number(read.head + read.tail) * 10 ** digits, code, digits, lang),
          decimal: `${decimalReading} ${code}`,
        },
        true,
      ),
    };
  }
  if (read.error) {
    const example = `49${separators(lang).decimal}99`;
    return { ok: false, error: interpolate(gettext("Enter a number, such as 50 or %(example)s."), { example }, true) };
  }
  const whole = read.whole.replace(/^0+(?=\d)/, "");
  const fraction = read.fraction;
  if (fraction.length > digits) {
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
  const minor = Number(whole + fraction.padEnd(digits, "0"));
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
