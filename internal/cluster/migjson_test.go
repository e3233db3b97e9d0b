package cluster

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

func randomMoves(r *rand.Rand, n int) MigrationSet {
	ms := MigrationSet{}
	for range n {
		s := r.IntN(NumSlots)
		mg := &Migration{Slot: s, From: 1 + r.IntN(9), To: 1 + r.IntN(9), State: MigrateCopying,
			FromEpoch: r.Uint64() >> r.IntN(64), ToEpoch: uint64(r.IntN(1000))}
		if r.IntN(2) == 0 {
			mg.State = MigrateCutover
		}
		if r.IntN(3) == 0 {
			mg.Attempts = r.IntN(5)
			mg.Error = []string{"", "import failed", `a "quoted" <error> & \ more`, "caf\u00e9\n"}[r.IntN(4)]
		}
		mg.Paused = r.IntN(4) == 0
		ms[s] = mg
	}
	return ms
}

// The hand-written codec writes what encoding/json writes for a
// map[int]*Migration, and reads it (and anything else valid) back the same.
func TestMigrationSetJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 50, 1024} {
		ms := randomMoves(r, n)
		got, err := json.Marshal(ms)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[int]*Migration(ms))
		var gotV, wantV any
		if json.Unmarshal(got, &gotV) != nil || json.Unmarshal(want, &wantV) != nil || !reflect.DeepEqual(gotV, wantV) {
			t.Fatalf("%d moves:\n got %s\nwant %s", n, got, want)
		}
		var back MigrationSet
		if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, ms) {
			t.Fatalf("%d moves: read back %v %v", n, err, back)
		}
		// The fast reader took it (unless a string needed escapes).
		if _, ok := parseMigrations(got); !ok {
			escaped := false
			for _, mg := range ms {
				escaped = escaped || (mg.Error != "" && mg.Error != "import failed")
			}
			if !escaped {
				t.Fatalf("%d moves: the fast reader refused %s", n, got)
			}
		}
	}
	// Other valid forms: through encoding/json.
	for _, in := range []string{
		`{ "5" : {"to":2,"slot":5,"from":1,"state":"copying","from_epoch":3,"to_epoch":4} }`,
		`{"5":{"Slot":5,"state":"cutover","unknown":[1,2]}}`,
		`{"5":{"slot":5,"state":"cop\u0079ing"}}`,
		`{"5":null}`, `null`, `{}`,
	} {
		var fast MigrationSet
		var std map[int]*Migration
		errF, errS := json.Unmarshal([]byte(in), &fast), json.Unmarshal([]byte(in), &std)
		if (errF == nil) != (errS == nil) || !reflect.DeepEqual(map[int]*Migration(fast), std) {
			t.Errorf("%s: %v %v, encoding/json %v %v", in, fast, errF, std, errS)
		}
	}
	// A whole map keeps its moves through JSON.
	m := NewMap()
	m.Migrations = randomMoves(r, 10)
	b, _ := json.Marshal(m)
	var m2 Map
	if err := json.Unmarshal(b, &m2); err != nil || !reflect.DeepEqual(m2.Migrations, m.Migrations) {
		t.Fatalf("map: %v %v", err, m2.Migrations)
	}
}

// Whatever the fast reader accepts, encoding/json reads the same way.
func FuzzMigrationSetJSON(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 3} {
		b, _ := json.Marshal(randomMoves(r, n))
		f.Add(b)
	}
	f.Add([]byte(`{"1":{"slot":1,"from":01}}`))
	f.Add([]byte(`{"1":{"slot":-0,"paused":false},"1":null}`))
	f.Add([]byte(`{"99999999999999999999":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := parseMigrations(b)
		if !ok {
			return
		}
		var std map[int]*Migration
		if err := json.Unmarshal(b, &std); err != nil {
			t.Fatalf("fast reader accepted %q, encoding/json: %v", b, err)
		}
		if !reflect.DeepEqual(map[int]*Migration(fast), std) {
			t.Fatalf("%q: fast %v, encoding/json %v", b, fast, std)
		}
	})
}

func BenchmarkMigrationSetJSON(b *testing.B) {
	ms := randomMoves(rand.New(rand.NewPCG(5, 6)), 1024)
	for _, mg := range ms {
		mg.FromEpoch >>= 8 // up to 18 digits: the fast reader's
		if mg.Error != "" {
			mg.Error = "import failed"
		}
	}
	enc, _ := json.Marshal(ms)
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(ms)
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			var out MigrationSet
			_ = json.Unmarshal(enc, &out)
		}
	})
	b.Run("marshal-only", func(b *testing.B) {
		for b.Loop() {
			_, _ = ms.MarshalJSON()
		}
	})
	b.Run("parse-only", func(b *testing.B) {
		for b.Loop() {
			_, _ = parseMigrations(enc)
		}
	})
	b.Run("encode-reflect", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(map[int]*Migration(ms))
		}
	})
	b.Run("decode-reflect", func(b *testing.B) {
		for b.Loop() {
			var out map[int]*Migration
			_ = json.Unmarshal(enc, &out)
		}
	})
}

// MarshalMap and UnmarshalMap agree with encoding/json on whole maps.
func TestMarshalMap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 1024} {
		m := NewMap()
		m.Epoch = 42
		m.Nodes["n1"] = &Node{ID: "n1", Addr: "127.0.0.1:1"}
		m.Shards[1] = &Shard{ID: 1, Primary: "n1"}
		m.Managers["m1"] = `a "migrations": {} address`
		m.Migrations = randomMoves(r, n)
		if n == 0 {
			m.Migrations = nil
		}
		m.QueuedFrom, m.QueuedMoves = []int{1}, 3
		b, err := MarshalMap(m)
		if err != nil {
			t.Fatal(err)
		}
		var viaStd, viaOurs Map
		if err := json.Unmarshal(b, &viaStd); err != nil {
			t.Fatalf("encoding/json cannot read MarshalMap's %s: %v", b, err)
		}
		if err := UnmarshalMap(b, &viaOurs); err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(m)
		var fromStd Map
		if err := UnmarshalMap(std, &fromStd); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&viaStd, m) || !reflect.DeepEqual(&viaOurs, m) || !reflect.DeepEqual(&fromStd, m) {
			t.Fatalf("%d moves: the maps differ after a round trip", n)
		}
	}
}

// UnmarshalMap reads exactly what encoding/json reads, and refuses what
// it refuses.
func FuzzUnmarshalMap(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	m := NewMap()
	m.Epoch = 7
	m.Migrations = randomMoves(r, 3)
	b, _ := MarshalMap(m)
	f.Add(b)
	f.Add([]byte(`{"epoch":1,"migrations":{"1":{"slot":1}},"migrations":{"2":{"slot":2}}}`))
	f.Add([]byte(`{"settings":{"x":1,"migrations":{}}}`))
	f.Add([]byte(`{,"migrations":{}}`))
	f.Add([]byte(`{"epoch":1 ,"migrations":{} } `))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ours, std Map
		errO, errS := UnmarshalMap(b, &ours), json.Unmarshal(b, &std)
		if (errO == nil) != (errS == nil) {
			t.Fatalf("%q: UnmarshalMap %v, encoding/json %v", b, errO, errS)
		}
		if errS == nil && !reflect.DeepEqual(ours, std) {
			t.Fatalf("%q: UnmarshalMap %+v, encoding/json %+v", b, ours, std)
		}
	})
}

func BenchmarkMapJSON(b *testing.B) {
	m := NewMap()
	m.Migrations = randomMoves(rand.New(rand.NewPCG(5, 6)), 1024)
	for _, mg := range m.Migrations {
		mg.FromEpoch >>= 8
		if mg.Error != "" {
			mg.Error = "import failed"
		}
	}
	enc, _ := MarshalMap(m)
	b.Run("MarshalMap", func(b *testing.B) {
		for b.Loop() {
			_, _ = MarshalMap(m)
		}
	})
	b.Run("UnmarshalMap", func(b *testing.B) {
		for b.Loop() {
			var out Map
			_ = UnmarshalMap(enc, &out)
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		for b.Loop() {
			var out Map
			_ = json.Unmarshal(enc, &out)
		}
	})
}
