package persist

import (
	"bytes"
	"fmt"
	"testing"

	"shoal/internal/engine"
)

// BenchmarkLoad1M loads 1M small string keys (the bench/snapshot.sh case).
func BenchmarkLoad1M(b *testing.B) {
	src := engine.New(engine.Hooks{})
	for i := 0; i < 1_000_000; i++ {
		add(src, fmt.Sprintf("key:%012d", i), str("xxxxxxxxxx"))
	}
	var buf bytes.Buffer
	if _, err := Dump(src, &buf, DumpOptions{}); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db := engine.New(engine.Hooks{})
		if _, err := Load(db, bytes.NewReader(data), LoadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDump1M(b *testing.B) {
	src := engine.New(engine.Hooks{})
	for i := 0; i < 1_000_000; i++ {
		add(src, fmt.Sprintf("key:%012d", i), str("xxxxxxxxxx"))
	}
	var buf bytes.Buffer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		st, err := Dump(src, &buf, DumpOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(st.Bytes)
	}
}
