/* jsontext.h — JSON text that is always valid RFC 8259 in UTF-8.
 *
 * The responses pyexec writes embed bytes it does not control: what a script printed (any
 * bytes at all) and what the runner sent on the result channel (which a hostile script can
 * forge). These two functions are the gate: one turns arbitrary bytes into a JSON string, the
 * other checks that a piece of text is one strict JSON value before it is copied verbatim. */
#ifndef PYEXEC_JSONTEXT_H
#define PYEXEC_JSONTEXT_H

#include <stddef.h>

#include "util.h"

/* Appends bytes as a quoted JSON string. Invalid UTF-8 (bad bytes, overlong forms, encoded
 * surrogates, code points past U+10FFFF) becomes U+FFFD, one per offending byte; control
 * characters, '"', '\\', U+2028 and U+2029 are escaped. 0 or -ENOMEM. */
int jt_append_string(struct sbuf *out, const void *bytes, size_t len);

/* 0 when text[0..len) is exactly one JSON value (surrounding whitespace allowed): strict RFC
 * 8259 grammar, valid UTF-8, no NaN/Infinity, no unpaired \u surrogate escapes, and no deeper
 * than max_depth nested arrays/objects. Beyond the grammar, what parsers disagree on is
 * refused too: -ERANGE for a number with a fraction or exponent that a double cannot hold
 * (1e999 reads as Infinity; integers pass at any size), -EEXIST when an object has a name
 * twice (compared unescaped; parsers keep the first, the last, or fail), reported only if
 * the text is otherwise valid. -EINVAL for anything else, -ENOMEM, -E2BIG past 4 GiB. */
int jt_validate(const char *text, size_t len, unsigned max_depth);

/* Length of the well-formed UTF-8 sequence at s[0..len), or 0 if it is not one. */
size_t jt_utf8_seq_len(const unsigned char *s, size_t len);

#endif
