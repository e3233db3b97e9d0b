package persist

// blockBuf is a byte queue in fixed-size blocks: appending copies into the
// last block, dropping from the front recycles whole blocks. The log keeps
// up to a second of records in it until they are fsynced; unlike one
// growing slice, it never re-copies what it holds.
type blockBuf struct {
	blocks [][]byte
	start  int // offset of the first live byte in blocks[0]
	n      int // live bytes
	free   [][]byte
}

const blockSize = 1 << 20

func (b *blockBuf) len() int { return b.n }

func (b *blockBuf) append(p []byte) {
	b.n += len(p)
	if k := len(b.blocks); k > 0 {
		last := b.blocks[k-1]
		c := copy(last[len(last):cap(last)], p)
		b.blocks[k-1] = last[:len(last)+c]
		p = p[c:]
	}
	for len(p) > 0 {
		var blk []byte
		if m := len(b.free); m > 0 {
			blk, b.free = b.free[m-1], b.free[:m-1]
		} else {
			blk = make([]byte, 0, max(blockSize, len(p)))
		}
		c := copy(blk[:cap(blk)], p)
		b.blocks = append(b.blocks, blk[:c])
		p = p[c:]
	}
}

// drop removes the first n live bytes. Up to 32 emptied blocks are kept
// for reuse: a second of heavy writes, without allocating it again.
func (b *blockBuf) drop(n int) {
	b.n -= n
	for n > 0 {
		live := len(b.blocks[0]) - b.start
		if n < live {
			b.start += n
			return
		}
		n -= live
		if blk := b.blocks[0]; cap(blk) == blockSize && len(b.free) < 32 {
			b.free = append(b.free, blk[:0])
		}
		b.blocks[0] = nil
		b.blocks = b.blocks[1:]
		b.start = 0
	}
	if len(b.blocks) == 0 {
		b.blocks = b.blocks[:0:0]
		b.start = 0
	}
}

// each calls fn with the live bytes from offset from on, in pieces.
func (b *blockBuf) each(from int, fn func(p []byte) error) error {
	off := 0
	for i, blk := range b.blocks {
		if i == 0 {
			blk = blk[b.start:]
		}
		if from < off+len(blk) {
			if err := fn(blk[max(from-off, 0):]); err != nil {
				return err
			}
		}
		off += len(blk)
	}
	return nil
}
