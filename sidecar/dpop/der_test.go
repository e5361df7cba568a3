package dpop

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestRawToDER compares rawToDER with encoding/asn1's DER of the same two
// integers (what ecdsa.Verify encodes from big.Ints), on halves with
// leading zeros, high bits and zero values.
func TestRawToDER(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	half := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		switch rng.IntN(6) {
		case 0:
			b[0] = 0
		case 1:
			b[0] |= 0x80
		case 2:
			clear(b[:rng.IntN(size)+1]) // leading zeros, or zero
		case 3:
			b[0], b[1] = 0, 0x80
		}
		return b
	}
	for i := range 20000 {
		size := 32
		if i%2 == 1 {
			size = 48
		}
		r, s := half(size), half(size)
		var buf [derSigMax]byte
		got, ok := rawToDER(buf[:0], r, s)
		ri, si := new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)
		if ri.Sign() == 0 || si.Sign() == 0 {
			if ok {
				t.Fatalf("rawToDER(%x, %x) accepted a zero half", r, s)
			}
			continue
		}
		want, err := asn1.Marshal(struct{ R, S *big.Int }{ri, si})
		if err != nil {
			t.Fatal(err)
		}
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("rawToDER(%x, %x) = %x, %v; want %x", r, s, got, ok, want)
		}
	}
	if _, ok := rawToDER(nil, make([]byte, 49), bytes.Repeat([]byte{1}, 49)); ok {
		t.Error("rawToDER accepted a 49-byte half")
	}
}
