/**
 * Hiding configured secrets in text meant for people: log messages, error messages and stack traces, connection
 * status messages. It works on the text itself, before a message is serialised, so that keys, enum values, numbers and
 * JSON punctuation, which a secret can equal as well as any word can, are never touched and every line stays an
 * Airbyte message whatever the password.
 */

/** What replaces a secret, unless the secret is part of it. */
export const REDACTED = '**********';

/** Masks to fall back on when the secret is part of the usual one or masking would form it again (`x*` in `xx*`). */
const MASKS = [REDACTED, '[secret]', '<hidden>', '###'];

/** Texts to show instead of one that no mask can clean; the empty string contains no secret. */
const WITHHELD = ['(text withheld: it would show a configured secret)', '(withheld)', ''];

/** The ways a secret may be written into a text: as it is, inside a JSON string, percent-encoded in a URL. */
function formsOf(secret: string): string[] {
  const forms = [secret, JSON.stringify(secret).slice(1, -1)];
  try {
    forms.push(encodeURIComponent(secret));
  } catch {
    // A lone surrogate cannot be percent-encoded, so it cannot appear that way either.
  }
  return forms;
}

export class Redactor {
  private forms: string[] = [];

  /** Adds values that must never appear in text; empty and missing ones are ignored. */
  add(values: Iterable<string | undefined>): void {
    const forms = new Set(this.forms);
    for (const value of values) if (value) for (const form of formsOf(value)) forms.add(form);
    // Longest first, so that where two secrets start at the same place the longer is masked whole.
    this.forms = [...forms].sort((a, b) => b.length - a.length);
  }

  /** `text` with every secret masked; a text no mask can clean is withheld. */
  text(text: string): string {
    if (!this.reveals(text)) return text;
    for (const mask of MASKS) {
      const masked = this.mask(text, mask);
      if (!this.reveals(masked)) return masked;
    }
    return WITHHELD.find((text) => !this.reveals(text)) ?? '';
  }

  /**
   * Replaces each leftmost occurrence of a secret, the longest where several start there. Plain searches, not one
   * regular expression: V8 refuses a pattern as long as a 65,535-byte password percent-encoded.
   */
  private mask(text: string, mask: string): string {
    // Where each form next occurs at or after `at`; -1 once it no longer does.
    const next = this.forms.map((form) => text.indexOf(form));
    let masked = '';
    let at = 0;
    for (;;) {
      let found = -1;
      for (let i = 0; i < next.length; i++) {
        let index = next[i] as number;
        if (index !== -1 && index < at) {
          index = text.indexOf(this.forms[i] as string, at);
          next[i] = index;
        }
        if (index !== -1 && (found === -1 || index < (next[found] as number))) found = i;
      }
      if (found === -1) return masked + text.slice(at);
      const start = next[found] as number;
      masked += text.slice(at, start) + mask;
      at = start + (this.forms[found] as string).length;
    }
  }

  private reveals(text: string): boolean {
    return this.forms.some((form) => text.includes(form));
  }
}
