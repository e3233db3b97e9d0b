// Package glob implements Redis's glob-style pattern matching (KEYS, SCAN
// MATCH, PSUBSCRIBE, CONFIG GET): * ? [abc] [^a] [a-z] and \ escapes.
package glob

// Match reports whether s matches pattern.
//
// It uses the classic single-backtrack-point algorithm: on a mismatch it
// resumes after the last '*' one character further into s. That is
// O(len(pattern)·len(s)) in the worst case, where a naive recursive matcher
// is exponential on patterns like "*a*a*a*a*b" (a stalled event loop).
func Match(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				starP, starI = p, i
				continue
			case '?':
				p++
				i++
				continue
			default:
				if n, ok := matchOne(pattern, p, s[i]); ok {
					p = n
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchOne matches the single-character element of pattern at p (a
// literal, an escaped literal or a [class]) against c and returns the index
// after the element.
func matchOne(pattern string, p int, c byte) (int, bool) {
	switch pattern[p] {
	case '\\':
		if p+1 < len(pattern) {
			return p + 2, pattern[p+1] == c
		}
		return p + 1, c == '\\'
	case '[':
		q := p + 1
		not := false
		if q < len(pattern) && pattern[q] == '^' {
			not = true
			q++
		}
		matched := false
		for q < len(pattern) && pattern[q] != ']' {
			switch {
			case pattern[q] == '\\' && q+1 < len(pattern):
				if pattern[q+1] == c {
					matched = true
				}
				q += 2
			case q+2 < len(pattern) && pattern[q+1] == '-' && pattern[q+2] != ']':
				lo, hi := pattern[q], pattern[q+2]
				if lo > hi {
					lo, hi = hi, lo
				}
				if c >= lo && c <= hi {
					matched = true
				}
				q += 3
			default:
				if pattern[q] == c {
					matched = true
				}
				q++
			}
		}
		if q < len(pattern) {
			q++ // the ']'
		}
		return q, matched != not
	default:
		return p + 1, pattern[p] == c
	}
}
