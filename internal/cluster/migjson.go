package cluster

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
)

// MigrationSet is a map's moves by slot. Its JSON is what encoding/json
// makes of a map[int]*Migration (an object keyed by the slot, each move
// an object of Migration's fields; the keys here in slot order, not
// encoding/json's string order), written and read by hand: every map
// epoch of a rebalance is encoded by the manager and decoded by every
// node, proxy and migrator, and with a window of 1024 moves
// encoding/json's reflection was most of the manager's and the
// migrator's CPU during a move. Input the fast reader does not expect
// (other spacing, escapes, unknown fields) goes through encoding/json
// instead, so any valid form is read.
type MigrationSet map[int]*Migration

// MarshalMap encodes m as encoding/json does, its moves last and by
// hand. encoding/json checks and compacts whatever a MarshalJSON method
// returns, which cost more than the reflection it saved; the manager
// encodes every map it serves with this.
func MarshalMap(m *Map) ([]byte, error) {
	c := *m
	c.Migrations = nil
	b, err := json.Marshal(&c)
	if err != nil || len(m.Migrations) == 0 {
		return b, err
	}
	b = b[:len(b)-1] // '}': the map always has fields ("epoch")
	b = append(b, migrationsKey...)
	b = m.Migrations.appendJSON(b)
	return append(b, '}'), nil
}

const migrationsKey = `,"migrations":`

// UnmarshalMap decodes a map into m (like json.Unmarshal). When the moves
// come last in MarshalMap's form it reads them by hand and gives
// encoding/json only the rest (it checks a whole document before it
// reads any of it); anything else goes to encoding/json whole. The split
// is at the document's last `,"migrations":`, which no string holds
// unescaped; a nested one would leave the move parser short of the end
// or the rest unbalanced, and fall back.
func UnmarshalMap(b []byte, m *Map) error {
	if i := bytes.LastIndex(b, []byte(migrationsKey)); i > 0 && !bytes.HasSuffix(bytes.TrimRight(b[:i], " \t\r\n"), []byte("{")) {
		end := len(bytes.TrimRight(b, " \t\r\n"))
		if b[end-1] == '}' {
			if ms, ok := parseMigrations(b[i+len(migrationsKey) : end-1]); ok {
				rest := make([]byte, 0, i+1)
				rest = append(append(rest, b[:i]...), '}')
				if err := json.Unmarshal(rest, m); err == nil {
					m.Migrations = ms
					return nil
				}
			}
		}
	}
	return json.Unmarshal(b, m)
}

// MarshalJSON writes the moves in slot order.
func (ms MigrationSet) MarshalJSON() ([]byte, error) {
	if ms == nil {
		return []byte("null"), nil
	}
	return ms.appendJSON(make([]byte, 0, 16+len(ms)*112)), nil
}

func (ms MigrationSet) appendJSON(b []byte) []byte {
	slots := make([]int, 0, len(ms))
	for s := range ms {
		slots = append(slots, s)
	}
	slices.Sort(slots)
	b = append(b, '{')
	for i, s := range slots {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(s), 10)
		b = append(b, `":`...)
		mg := ms[s]
		if mg == nil {
			b = append(b, "null"...)
			continue
		}
		b = mg.appendJSON(b)
	}
	return append(b, '}')
}

// appendJSON appends the move as encoding/json writes a Migration.
func (mg *Migration) appendJSON(b []byte) []byte {
	b = append(b, `{"slot":`...)
	b = strconv.AppendInt(b, int64(mg.Slot), 10)
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, int64(mg.From), 10)
	b = append(b, `,"to":`...)
	b = strconv.AppendInt(b, int64(mg.To), 10)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, mg.State)
	b = append(b, `,"from_epoch":`...)
	b = strconv.AppendUint(b, mg.FromEpoch, 10)
	b = append(b, `,"to_epoch":`...)
	b = strconv.AppendUint(b, mg.ToEpoch, 10)
	if mg.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(mg.Attempts), 10)
	}
	if mg.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, mg.Error)
	}
	if mg.Paused {
		b = append(b, `,"paused":true`...)
	}
	return append(b, '}')
}

// appendJSONString appends s quoted; a string with anything to escape
// (or to check, like non-ASCII bytes) is left to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// UnmarshalJSON reads what MarshalJSON writes, or any other valid form
// through encoding/json.
func (ms *MigrationSet) UnmarshalJSON(b []byte) error {
	if out, ok := parseMigrations(b); ok {
		*ms = out
		return nil
	}
	var m map[int]*Migration
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*ms = m
	return nil
}

// parseMigrations reads exactly MarshalJSON's form; ok is false for
// anything else (the caller falls back to encoding/json).
func parseMigrations(b []byte) (MigrationSet, bool) {
	p := jsonScan{b: b}
	if p.lit("null") && p.end() {
		return nil, true
	}
	p.i = 0
	if !p.byte('{') {
		return nil, false
	}
	// One allocation for the moves, and the map sized for them.
	n := bytes.Count(b, []byte(`{"slot":`))
	out := make(MigrationSet, n)
	slab := make([]Migration, n)
	if p.byte('}') {
		return out, p.end()
	}
	for {
		if !p.byte('"') {
			return nil, false
		}
		slot, ok := p.int()
		if !ok || !p.byte('"') || !p.byte(':') {
			return nil, false
		}
		if _, dup := out[int(slot)]; dup {
			return nil, false
		}
		if p.lit("null") {
			out[int(slot)] = nil
		} else {
			var mg *Migration
			if len(slab) > 0 {
				mg, slab = &slab[0], slab[1:]
			} else {
				mg = &Migration{}
			}
			if !p.migration(mg) {
				return nil, false
			}
			out[int(slot)] = mg
		}
		if p.byte('}') {
			return out, p.end()
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

// jsonScan is a cursor over compact JSON for parseMigrations.
type jsonScan struct {
	b []byte
	i int
}

func (p *jsonScan) end() bool { return p.i == len(p.b) }

func (p *jsonScan) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScan) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// int reads a JSON integer of up to 18 digits (no allocation).
func (p *jsonScan) int() (int64, bool) {
	neg := p.byte('-')
	v, ok := p.uint()
	if !ok {
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

func (p *jsonScan) uint() (uint64, bool) {
	j := p.i
	var v uint64
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' && j-p.i < 18 {
		v = v*10 + uint64(p.b[j]-'0')
		j++
	}
	if j == p.i || (j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9') || (p.b[p.i] == '0' && j-p.i > 1) {
		return 0, false // none, more than 18 digits, or a leading zero
	}
	p.i = j
	return v, true
}

// str reads a string without escapes or non-ASCII bytes, as a slice of
// the input.
func (p *jsonScan) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	for j := p.i; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[p.i:j]
			p.i = j + 1
			return s, true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// migration reads one move object into mg, its fields in any order.
func (p *jsonScan) migration(mg *Migration) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	for {
		name, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		var bad bool
		switch string(name) {
		case "slot":
			bad = !p.intInto(&mg.Slot)
		case "from":
			bad = !p.intInto(&mg.From)
		case "to":
			bad = !p.intInto(&mg.To)
		case "attempts":
			bad = !p.intInto(&mg.Attempts)
		case "from_epoch":
			mg.FromEpoch, ok = p.uint()
			bad = !ok
		case "to_epoch":
			mg.ToEpoch, ok = p.uint()
			bad = !ok
		case "state":
			var v []byte
			v, ok = p.str()
			mg.State, bad = Intern(v, migrationStates), !ok
		case "error":
			var v []byte
			v, ok = p.str()
			mg.Error, bad = string(v), !ok
		case "paused":
			switch {
			case p.lit("true"):
				mg.Paused = true
			case p.lit("false"):
				mg.Paused = false
			default:
				bad = true
			}
		default:
			bad = true
		}
		if bad {
			return false
		}
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// intInto reads a JSON integer that fits an int into *dst.
func (p *jsonScan) intInto(dst *int) bool {
	v, ok := p.int()
	if !ok || v != int64(int(v)) {
		return false
	}
	*dst = int(v)
	return true
}

// migrationStates are the states a move can be in.
var migrationStates = []string{MigrateCopying, MigrateCutover}

// Intern returns the string of known equal to b, else b as a new string:
// a reader of many records allocates no string for the names they share
// (the moves' states here, the imports' states in the migrator).
func Intern(b []byte, known []string) string {
	for _, s := range known {
		if string(b) == s {
			return s
		}
	}
	return string(b)
}
