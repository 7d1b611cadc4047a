// Money and time for people. Amounts travel as integer minor units with an ISO currency
// and its exponent (every Money object of the API carries `exponent`, from the server's
// one money module); the agent types major units, converted here without floating point.
// No currency table here: the exponent comes from the server.

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

/**
 * Parse what an agent typed ("50", "1,250.5", "$50.00") into minor units of `currency`,
 * which has `exp` decimals (the Money JSON's `exponent`).
 * Returns {ok: true, minor} or {ok: false, error}.
 */
export function parseMajor(text, currency, exp) {
  const digits = exponent(currency, exp);
  const code = String(currency || "").toUpperCase();
  const cleaned = String(text ?? "")
    .trim()
    .replace(/^[^\d.-]+/, "")
    .replace(/[,\s]/g, "");
  if (cleaned === "") return { ok: false, error: "Enter an amount." };
  if (cleaned.startsWith("-")) return { ok: false, error: "Enter a positive amount." };
  const match = /^(\d+)(?:\.(\d*))?$/.exec(cleaned);
  if (!match) return { ok: false, error: "Enter a number, such as 50 or 49.99." };
  const whole = match[1];
  const fraction = match[2] || "";
  if (fraction.length > digits) {
    return {
      ok: false,
      error:
        digits === 0
          ? `${code} has no decimals: enter a whole amount.`
          : `${code} has at most ${digits} decimals.`,
    };
  }
  const minor = Number(whole + fraction.padEnd(digits, "0"));
  if (!Number.isSafeInteger(minor)) return { ok: false, error: "That amount is too large." };
  if (minor === 0) return { ok: false, error: "Enter an amount above zero." };
  return { ok: true, minor };
}

/** Minor units → the major-unit string an input field shows ("50.00", "5000" for JPY). */
export function toMajorString(minor, currency, exp) {
  const digits = exponent(currency, exp);
  const text = String(Math.abs(minor)).padStart(digits + 1, "0");
  const sign = minor < 0 ? "-" : "";
  if (digits === 0) return sign + text;
  return `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

/** Minor units for people ("$2,400.00", "¥5,000"), with `exp` decimals. */
export function formatMoney(minor, currency, exp) {
  if (minor === null || minor === undefined || !currency) return "—";
  const code = currency.toUpperCase();
  const digits = exponent(code, exp);
  try {
    return new Intl.NumberFormat("en-US", {
      style: "currency",
      currency: code,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(Number(toMajorString(minor, code, digits)));
  } catch {
    return `${toMajorString(minor, code, digits)} ${code}`;
  }
}

/** A Money object of the API ({amount, currency, exponent, display}) for people. */
export function money(value) {
  if (!value) return "—";
  return value.display || formatMoney(value.amount, value.currency, value.exponent);
}

export function parseDate(value) {
  if (!value) return null;
  const text = String(value).trim();
  const date = new Date(/^\d{4}-\d{2}-\d{2} /.test(text) ? text.replace(" ", "T") : text);
  return Number.isNaN(date.getTime()) ? null : date;
}

const MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");

/** "2026-01-28" → "Jan 28, 2026" (dates are calendar dates: no time zone shift). */
export function longDate(value) {
  if (!value) return "—";
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(value));
  if (!m) return String(value);
  return `${MONTHS[Number(m[2]) - 1]} ${Number(m[3])}, ${m[1]}`;
}

export function isoDate(value) {
  if (!value) return "—";
  const m = /^(\d{4}-\d{2}-\d{2})/.exec(String(value));
  return m ? m[1] : String(value);
}

/** "just now", "3 min ago", "2 h ago", "4 days ago". */
export function age(value, now = new Date()) {
  const date = parseDate(value);
  if (!date) return "";
  const seconds = Math.max(0, Math.round((now.getTime() - date.getTime()) / 1000));
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

export function dateTime(value) {
  const date = parseDate(value);
  if (!date) return "—";
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
