package edge

import (
	"crypto/sha256"
	"strconv"
)

func sha256sum(b []byte) [32]byte { return sha256.Sum256(b) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
