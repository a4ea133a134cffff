package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// errBadPersons means a persons folder or CSV cannot be read as such; the
// message names the file and line.
var errBadPersons = errors.New("termserver: invalid persons file")

// Limits on what push reads from disk.
const (
	maxPersons   = 100000  // rows in one CSV
	maxBlobBytes = 4 << 20 // one photo or template file
)

// personFile is one person read from a folder or CSV, biometrics as raw
// bytes (base64 is the wire's business).
type personFile struct {
	ID         string
	Name       string
	IDNumber   string
	CardNumber string
	KeyNumber  string
	Department string
	Role       int
	Face       []byte // face photo (JPEG)
	LeftCode   []byte // fingerprint templates
	RightCode  []byte
	LeftImage  []byte // fingerprint images
	RightImage []byte
}

// csvColumns are the columns a persons CSV may have; person_id is
// required. The biometric columns name files relative to the CSV's folder.
var csvColumns = []string{"person_id", "person_name", "id_number", "card_number",
	"key_number", "department_number", "role", "face", "left_code", "right_code",
	"left_image", "right_image"}

// loadPersons reads persons from path:
//
//   - a .csv file whose first line names columns among csvColumns
//     (person_id required); face, left_code, right_code, left_image and
//     right_image name files beside the CSV;
//   - a folder holding persons.csv (read as above);
//   - any other folder: one person per face photo <person_id>.jpg (or
//     .jpeg), with <person_id>.left.tpl / <person_id>.right.tpl as
//     fingerprint templates when present; the name is the person_id.
func loadPersons(path string) ([]personFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load persons: %w", err)
	}
	if !st.IsDir() {
		return loadPersonsCSV(path)
	}
	if csvPath := filepath.Join(path, "persons.csv"); fileExists(csvPath) {
		return loadPersonsCSV(csvPath)
	}
	return loadPersonsDir(path)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func loadPersonsCSV(path string) ([]personFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load persons: %w", err)
	}
	defer f.Close()
	dir := filepath.Dir(path)
	r := csv.NewReader(io.LimitReader(f, 64<<20))
	r.TrimLeadingSpace = true
	r.Comment = '#'
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("load persons %s: read header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(csvColumns, h) {
			return nil, fmt.Errorf("load persons %s: unknown column %q (known: %s): %w",
				path, h, strings.Join(csvColumns, ", "), errBadPersons)
		}
		col[h] = i
	}
	if _, ok := col["person_id"]; !ok {
		return nil, fmt.Errorf("load persons %s: no person_id column: %w", path, errBadPersons)
	}
	var out []personFile
	seen := map[string]int{}
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("load persons %s: %w", path, err)
		}
		if len(out) >= maxPersons {
			return nil, fmt.Errorf("load persons %s: more than %d persons: %w", path, maxPersons, errBadPersons)
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(row) {
				return strings.TrimSpace(row[i])
			}
			return ""
		}
		p := personFile{
			ID: get("person_id"), Name: get("person_name"), IDNumber: get("id_number"),
			CardNumber: get("card_number"), KeyNumber: get("key_number"),
			Department: get("department_number"),
		}
		where := fmt.Sprintf("%s line %d", path, line)
		if p.ID == "" {
			return nil, fmt.Errorf("load persons %s: empty person_id: %w", where, errBadPersons)
		}
		if prev, dup := seen[p.ID]; dup {
			return nil, fmt.Errorf("load persons %s: person_id %q already on line %d: %w", where, p.ID, prev, errBadPersons)
		}
		seen[p.ID] = line
		if s := get("role"); s != "" {
			if p.Role, err = strconv.Atoi(s); err != nil {
				return nil, fmt.Errorf("load persons %s: role %q is not a number: %w", where, s, errBadPersons)
			}
		}
		for _, b := range []struct {
			col string
			dst *[]byte
		}{{"face", &p.Face}, {"left_code", &p.LeftCode}, {"right_code", &p.RightCode},
			{"left_image", &p.LeftImage}, {"right_image", &p.RightImage}} {
			name := get(b.col)
			if name == "" {
				continue
			}
			if !filepath.IsAbs(name) {
				name = filepath.Join(dir, name)
			}
			if *b.dst, err = readBlob(name); err != nil {
				return nil, fmt.Errorf("load persons %s: %s: %w", where, b.col, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func loadPersonsDir(dir string) ([]personFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load persons: %w", err)
	}
	var out []personFile
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if ext != ".jpg" && ext != ".jpeg" {
			continue
		}
		id := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))
		if id == "" || strings.Contains(id, ".") {
			continue // left.jpg-style fingerprint images are not persons
		}
		p := personFile{ID: id, Name: id}
		if p.Face, err = readBlob(filepath.Join(dir, e.Name())); err != nil {
			return nil, fmt.Errorf("load persons: %w", err)
		}
		for _, b := range []struct {
			suffix string
			dst    *[]byte
		}{{".left.tpl", &p.LeftCode}, {".right.tpl", &p.RightCode}} {
			name := filepath.Join(dir, id+b.suffix)
			if !fileExists(name) {
				continue
			}
			if *b.dst, err = readBlob(name); err != nil {
				return nil, fmt.Errorf("load persons: %w", err)
			}
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load persons %s: no persons.csv and no <person_id>.jpg: %w", dir, errBadPersons)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// readBlob reads a photo or template file, refusing empty and oversized ones.
func readBlob(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBlobBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty: %w", name, errBadPersons)
	}
	if len(b) > maxBlobBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", name, maxBlobBytes, errBadPersons)
	}
	return b, nil
}

// jpegSize returns the pixel size from a JPEG's first SOF marker, or 0, 0
// when b is not a JPEG it can read.
func jpegSize(b []byte) (w, h int) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0, 0
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 0, 0
		}
		m := b[i+1]
		if m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01 || m == 0xFF {
			i += 2
			continue
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if n < 2 {
			return 0, 0
		}
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			if i+9 > len(b) {
				return 0, 0
			}
			return int(b[i+7])<<8 | int(b[i+8]), int(b[i+5])<<8 | int(b[i+6])
		}
		i += 2 + n
	}
	return 0, 0
}

const sampleAbout = `Writes DIR/persons.csv, DIR/ada.jpg and DIR/ada.tpl: one person, Ada
(person_id 42), with card number 0006547886, a face photo and a fingerprint
template that termsim's face and fingerprint modules accept. Push it with
'termserver push DIR'. On a fresh termsim the photo becomes face user 1 and
the template fingerprint slot 0, so 'swipe 0006547886', 'face 1' and
'finger 0' present Ada's card, face and finger. (The photo is a small
synthetic JPEG header with random bytes: the simulated module checks the
JPEG marker and tells photos apart by their hash; a real module wants a
real photo.)`

// samplePersonCSV is the sample person's persons.csv.
const samplePersonCSV = "person_id,person_name,card_number,face,left_code\n42,Ada,0006547886,ada.jpg,ada.tpl\n"

func cmdSample(ctx context.Context, c *client, args []string) error {
	args, err := newFlags(c, "sample").parse(args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("sample needs one directory")
	}
	dir := args[0]
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	for name, b := range map[string][]byte{
		"persons.csv": []byte(samplePersonCSV),
		"ada.jpg":     demoPhoto(42),
		"ada.tpl":     demoTemplate(42),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("sample: %w", err)
		}
	}
	fmt.Fprintf(c.stdout, "sample person Ada (42, card 0006547886, face photo, fingerprint) in %s\n", dir)
	return nil
}
