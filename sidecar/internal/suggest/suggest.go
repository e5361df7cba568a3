// Package suggest finds the known name closest to a mistyped one, for
// "did you mean" in config errors (strictyaml) and on the command line.
package suggest

import "strings"

// Closest returns the name in known closest to got (Levenshtein distance,
// case-insensitive), and whether it is close enough to suggest: at most 2
// edits, or a third of got's length for long names.
func Closest(got string, known []string) (string, bool) {
	best, bestD := "", -1
	g := strings.ToLower(got)
	for _, k := range known {
		if d := Distance(g, strings.ToLower(k)); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	return best, bestD >= 0 && bestD <= max(2, len(got)/3)
}

// Distance is the Levenshtein distance between a and b, in bytes.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
