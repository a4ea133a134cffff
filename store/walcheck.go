package store

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// A damaged write-ahead log is the quiet kind of damage: SQLite replays the
// log up to its first frame whose checksum fails and ignores the rest, as
// it must for a log torn by a power cut. Torn, only the last, uncommitted
// frames are missing; damaged in the middle, valid committed frames follow
// the bad ones and their transactions (records, acks, persons) are gone
// without an error. checkWAL tells the two apart before SQLite opens the
// file, so Open can treat the second as damage (move aside, salvage what
// the valid part of the log holds, report it).

// walHeaderSize and walFrameHeaderSize are fixed by the WAL format.
const (
	walHeaderSize      = 32
	walFrameHeaderSize = 24
)

// walDamage describes a damaged write-ahead log.
type walDamage struct {
	frames      int // frames in the file
	badFrame    int // index of the first frame SQLite rejects
	lostCommits int // valid commit frames after it: transactions lost
}

func (d walDamage) String() string {
	return fmt.Sprintf("write-ahead log damaged at frame %d of %d: at least %d committed transactions after it cannot be replayed",
		d.badFrame, d.frames, d.lostCommits)
}

// checkWAL reads path's -wal file, if any, and reports damage: committed
// frames that SQLite would skip because an earlier frame is bad, or a bad
// log header in front of frames. A missing, empty or merely torn log is no
// damage.
func checkWAL(path string) (walDamage, bool, error) {
	f, err := os.Open(path + "-wal")
	if os.IsNotExist(err) {
		return walDamage{}, false, nil
	}
	if err != nil {
		return walDamage{}, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return walDamage{}, false, err
	}
	if fi.Size() <= walHeaderSize {
		return walDamage{}, false, nil
	}
	var hdr [walHeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return walDamage{}, false, err
	}
	magic := binary.BigEndian.Uint32(hdr[0:])
	pageSize := int(binary.BigEndian.Uint32(hdr[8:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	okHeader := (magic == 0x377f0682 || magic == 0x377f0683) && pageSize >= 512 && pageSize <= 65536 && pageSize&(pageSize-1) == 0
	bigEndian := magic&1 == 1
	if okHeader {
		s0, s1 := walChecksum(bigEndian, 0, 0, hdr[:24])
		okHeader = s0 == binary.BigEndian.Uint32(hdr[24:]) && s1 == binary.BigEndian.Uint32(hdr[28:])
	}
	if !okHeader {
		// SQLite ignores the whole log. It is damage only if real frames
		// follow: committed frames of one generation (the salts of the
		// first frame) that check against the frame before them. Garbage
		// does not.
		return scanHeadless(f, fi.Size())
	}
	salt1, salt2 := binary.BigEndian.Uint32(hdr[16:]), binary.BigEndian.Uint32(hdr[20:])
	frameSize := walFrameHeaderSize + pageSize
	frames := int((fi.Size() - walHeaderSize) / int64(frameSize))
	s0, s1 := binary.BigEndian.Uint32(hdr[24:]), binary.BigEndian.Uint32(hdr[28:])
	buf := make([]byte, frameSize)
	bad := -1
	lost := 0
	var prevStored0, prevStored1 uint32 // the previous frame's stored checksum
	for i := range frames {
		if _, err := f.ReadAt(buf, walHeaderSize+int64(i)*int64(frameSize)); err != nil {
			return walDamage{}, false, err
		}
		fs1, fs2 := binary.BigEndian.Uint32(buf[8:]), binary.BigEndian.Uint32(buf[12:])
		st0, st1 := binary.BigEndian.Uint32(buf[16:]), binary.BigEndian.Uint32(buf[20:])
		commit := binary.BigEndian.Uint32(buf[4:]) != 0
		if bad < 0 {
			if fs1 != salt1 || fs2 != salt2 {
				break // frames of an older generation: the log ends here
			}
			c0, c1 := walChecksum(bigEndian, s0, s1, buf[:8])
			c0, c1 = walChecksum(bigEndian, c0, c1, buf[walFrameHeaderSize:])
			if c0 != st0 || c1 != st1 {
				bad = i
			} else {
				s0, s1 = c0, c1
			}
		} else if fs1 == salt1 && fs2 == salt2 && commit {
			// After the damage: a frame that checks against the stored
			// checksum of the frame before it was written whole, by this
			// log generation: a committed transaction SQLite will skip.
			c0, c1 := walChecksum(bigEndian, prevStored0, prevStored1, buf[:8])
			c0, c1 = walChecksum(bigEndian, c0, c1, buf[walFrameHeaderSize:])
			if c0 == st0 && c1 == st1 {
				lost++
			}
		}
		prevStored0, prevStored1 = st0, st1
	}
	if bad < 0 || lost == 0 {
		return walDamage{}, false, nil
	}
	return walDamage{frames: frames, badFrame: bad, lostCommits: lost}, true, nil
}

// walChecksum is SQLite's WAL checksum: over 32-bit words in the log's byte
// order, s0 += x0 + s1; s1 += x1 + s0.
func walChecksum(bigEndian bool, s0, s1 uint32, b []byte) (uint32, uint32) {
	for i := 0; i+8 <= len(b); i += 8 {
		var x0, x1 uint32
		if bigEndian {
			x0, x1 = binary.BigEndian.Uint32(b[i:]), binary.BigEndian.Uint32(b[i+4:])
		} else {
			x0, x1 = binary.LittleEndian.Uint32(b[i:]), binary.LittleEndian.Uint32(b[i+4:])
		}
		s0 += x0 + s1
		s1 += x1 + s0
	}
	return s0, s1
}

// scanHeadless looks for committed frames behind an unreadable log header,
// for the default page size and either byte order.
func scanHeadless(f *os.File, size int64) (walDamage, bool, error) {
	const pageSize = 4096
	frameSize := walFrameHeaderSize + pageSize
	frames := int((size - walHeaderSize) / int64(frameSize))
	if frames < 2 {
		return walDamage{}, false, nil
	}
	buf := make([]byte, frameSize)
	for _, bigEndian := range []bool{false, true} {
		var salt1, salt2, prev0, prev1 uint32
		lost := 0
		for i := range frames {
			if _, err := f.ReadAt(buf, walHeaderSize+int64(i)*int64(frameSize)); err != nil {
				return walDamage{}, false, err
			}
			fs1, fs2 := binary.BigEndian.Uint32(buf[8:]), binary.BigEndian.Uint32(buf[12:])
			st0, st1 := binary.BigEndian.Uint32(buf[16:]), binary.BigEndian.Uint32(buf[20:])
			if i == 0 {
				salt1, salt2 = fs1, fs2
			} else if fs1 == salt1 && fs2 == salt2 && binary.BigEndian.Uint32(buf[4:]) != 0 {
				c0, c1 := walChecksum(bigEndian, prev0, prev1, buf[:8])
				c0, c1 = walChecksum(bigEndian, c0, c1, buf[walFrameHeaderSize:])
				if c0 == st0 && c1 == st1 {
					lost++
				}
			}
			prev0, prev1 = st0, st1
		}
		if lost > 0 {
			return walDamage{frames: frames, badFrame: 0, lostCommits: lost}, true, nil
		}
	}
	return walDamage{}, false, nil
}
