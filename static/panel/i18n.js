// The panel's words in the agent's language. The catalog is Django's JavaScript catalog
// for the page's language (billing_app/web/i18n.py), loaded by panel.html as a deferred
// classic script from this origin before the modules run: it defines `django.gettext`
// and friends. Without it (a module imported on its own, as the tests do) every string
// reads as its English source.
//
// Call these by their gettext names: `make messages` (xgettext) extracts exactly
// gettext("…"), ngettext("…", "…", n) and pgettext("ctx", "…"). Placeholders are named:
//   interpolate(gettext("%(n)s seats are in use."), { n }, true)

function catalog() {
  const django = globalThis.django;
  return django && typeof django.gettext === "function" ? django : null;
}

export function gettext(msgid) {
  const c = catalog();
  return c ? c.gettext(msgid) : msgid;
}

export function ngettext(singular, plural, count) {
  const c = catalog();
  if (c) return c.ngettext(singular, plural, count);
  return Number(count) === 1 ? singular : plural;
}

export function pgettext(context, msgid) {
  const c = catalog();
  return c ? c.pgettext(context, msgid) : msgid;
}

/** Django's interpolate: named (`%(name)s` from `values`) or positional (`%s`). */
export function interpolate(format, values, named) {
  if (named) return String(format).replace(/%\(\w+\)s/g, (match) => String(values[match.slice(2, -2)]));
  let i = 0;
  return String(format).replace(/%s/g, () => String(values[i++]));
}

/** The page's language (BCP 47, from <html lang>), which Intl formats money and dates in. */
export function language() {
  const lang = (typeof document !== "undefined" && document.documentElement && document.documentElement.lang) || "";
  return lang.trim() || "en";
}

/** "Manager or VP Approver" in the page's language (Intl.ListFormat, a disjunction). */
export function orList(items) {
  const list = items.map(String).filter(Boolean);
  try {
    return new Intl.ListFormat(language(), { type: "disjunction" }).format(list);
  } catch {
    return list.join(" / ");
  }
}

/** "ch_1 and ch_2" in the page's language (Intl.ListFormat, a conjunction). */
export function andList(items) {
  const list = items.map(String).filter(Boolean);
  try {
    return new Intl.ListFormat(language(), { type: "conjunction" }).format(list);
  } catch {
    return list.join(", ");
  }
}
