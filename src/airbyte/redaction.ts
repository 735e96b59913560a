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

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

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
  private pattern: RegExp | undefined;

  /** Adds values that must never appear in text; empty and missing ones are ignored. */
  add(values: Iterable<string | undefined>): void {
    const forms = new Set(this.forms);
    for (const value of values) if (value) for (const form of formsOf(value)) forms.add(form);
    // Longest first, so that where two secrets start at the same place the longer is masked whole.
    this.forms = [...forms].sort((a, b) => b.length - a.length);
    this.pattern = this.forms.length === 0 ? undefined : new RegExp(this.forms.map(escapeRegExp).join('|'), 'g');
  }

  /** `text` with every secret masked; a text no mask can clean is withheld. */
  text(text: string): string {
    const pattern = this.pattern;
    if (!pattern || text.search(pattern) === -1) return text;
    for (const mask of MASKS) {
      const masked = text.replace(pattern, () => mask);
      if (!this.reveals(masked)) return masked;
    }
    return WITHHELD.find((text) => !this.reveals(text)) ?? '';
  }

  private reveals(text: string): boolean {
    return this.forms.some((form) => text.includes(form));
  }
}
