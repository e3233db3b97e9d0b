package persist

import (
	"bytes"
	"math/rand"
	"testing"
)

// blockBuf against a plain slice model: random appends (small and larger
// than a block), drops and reads from random offsets.
func TestBlockBuf(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var b blockBuf
	var model []byte
	for i := 0; i < 2000; i++ {
		switch rng.Intn(3) {
		case 0, 1:
			n := rng.Intn(3000)
			if rng.Intn(100) == 0 {
				n = blockSize + rng.Intn(blockSize)
			}
			p := make([]byte, n)
			rng.Read(p)
			b.append(p)
			model = append(model, p...)
		case 2:
			if len(model) > 0 {
				n := rng.Intn(len(model) + 1)
				b.drop(n)
				model = model[n:]
			}
		}
		if b.len() != len(model) {
			t.Fatalf("len %d, model %d", b.len(), len(model))
		}
		from := 0
		if len(model) > 0 {
			from = rng.Intn(len(model))
		}
		var got []byte
		b.each(from, func(p []byte) error { got = append(got, p...); return nil })
		if !bytes.Equal(got, model[from:]) {
			t.Fatalf("step %d: bytes from %d differ", i, from)
		}
	}
}
