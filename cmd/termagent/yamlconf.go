package main

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// configError is one problem in the configuration file: the line (0 when
// the key is not in the file), the dotted key path and what is wrong.
type configError struct {
	Line int
	Path string
	Msg  string
}

func (e *configError) Error() string {
	switch {
	case e.Line > 0 && e.Path != "":
		return fmt.Sprintf("config line %d: %s: %s", e.Line, e.Path, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("config line %d: %s", e.Line, e.Msg)
	case e.Path != "":
		return fmt.Sprintf("config: %s: %s", e.Path, e.Msg)
	}
	return "config: " + e.Msg
}

// maxConfigSize bounds the configuration file read into memory.
const maxConfigSize = 1 << 20

// decodeStrict decodes one YAML document from r into v (a pointer to a
// struct whose fields carry `yaml:"name"` tags; `yaml:",inline"` on a
// struct field puts its keys in the enclosing section) and returns the line
// of every key path it set. Unknown and repeated keys, anchors/aliases and
// values of the wrong type are errors naming the key path and line; the
// decoding goes on after each, and every one is returned (configErrors).
// A file that is not one YAML document is one error. A key with an empty
// value leaves the field at its zero value (the default). A field whose
// type implements encoding.TextUnmarshaler reads its one value itself.
func decodeStrict(r io.Reader, v any) (map[string]int, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, &configError{Msg: fmt.Sprintf("file is larger than %d bytes", maxConfigSize)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]int{}, nil // empty file: every default
		}
		return nil, syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &configError{Line: extra.Line, Msg: "more than one YAML document"}
	}
	d := &decoder{lines: map[string]int{}}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d.value(root, "", reflect.ValueOf(v).Elem())
	if len(d.errs) > 0 {
		return d.lines, d.errs
	}
	return d.lines, nil
}

// syntaxError turns yaml's "yaml: line 3: did not find ..." into a
// configError with that line.
func syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, text
			}
		}
	}
	return &configError{Line: line, Msg: msg}
}

type decoder struct {
	lines map[string]int
	errs  configErrors
}

var durationType = reflect.TypeFor[time.Duration]()

// fail records a problem; the decoding goes on.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &configError{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && (n.Value == "" || n.Value == "~" || n.Value == "null")
}

func (d *decoder) value(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.fail(n, path, "anchors and aliases are not supported")
		return
	}
	if path != "" {
		d.lines[path] = n.Line
	}
	if isNull(n) {
		return // zero: the documented default
	}
	if v.Type() == durationType {
		d.duration(n, path, v)
		return
	}
	if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a single value, not a %s", kindName(n.Kind))
			return
		}
		if err := tu.UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, path, v)
		return
	case reflect.Map:
		d.mapping(n, path, v)
		return
	case reflect.Slice:
		d.sequence(n, path, v)
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a single value, not a %s", kindName(n.Kind))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := parseBool(n.Value)
		if !ok {
			d.fail(n, path, "%q is not true or false", n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			d.fail(n, path, "%q is not a number", n.Value)
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "%s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			d.fail(n, path, "%q is not a non-negative number", n.Value)
			return
		}
		if v.OverflowUint(u) {
			d.fail(n, path, "%s is out of range", n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, "%q is not a number", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("config: %s: unsupported field type %s", path, v.Type())) // programming error
	}
}

func (d *decoder) duration(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a duration such as 3s or 5m, not a %s", kindName(n.Kind))
		return
	}
	if n.Value == "0" {
		v.SetInt(0)
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, "%q is not a duration (write it with a unit: 300ms, 3s, 5m)", n.Value)
		return
	}
	if dur < 0 {
		d.fail(n, path, "%s is negative", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a section of keys, not a %s", kindName(n.Kind))
		return
	}
	fields, names := keysOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "a key must be a plain name")
			continue
		}
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, kp, "unknown key (known here: %s)", strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			d.fail(k, kp, "key given twice")
			continue
		}
		seen[k.Value] = true
		d.value(val, kp, v.FieldByIndex(idx))
		d.lines[kp] = k.Line
	}
}

// keysOf lists the keys of a section type, in field order, with the index
// of each key's field; the fields of a `yaml:",inline"` struct field are
// keys of the section itself.
func keysOf(t reflect.Type) (map[string][]int, []string) {
	fields := map[string][]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opt, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opt == "inline" && f.Type.Kind() == reflect.Struct {
			sub, subNames := keysOf(f.Type)
			for _, n := range subNames {
				fields[n] = append([]int{i}, sub[n]...)
			}
			names = append(names, subNames...)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		fields[name] = []int{i}
		names = append(names, name)
	}
	return fields, names
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a table of keys, not a %s", kindName(n.Kind))
		return
	}
	t := v.Type()
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		key := reflect.New(t.Key()).Elem()
		if k.Kind != yaml.ScalarNode || isNull(k) {
			d.fail(k, path, "a key must be a plain value")
			continue
		}
		before := len(d.errs)
		d.value(k, kp, key)
		if len(d.errs) > before {
			continue
		}
		if m.MapIndex(key).IsValid() {
			d.fail(k, kp, "key given twice")
			continue
		}
		elem := reflect.New(t.Elem()).Elem()
		d.value(val, kp, elem)
		d.lines[kp] = k.Line
		m.SetMapIndex(key, elem)
	}
	v.Set(m)
}

func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want a list, not a %s", kindName(n.Kind))
		return
	}
	if len(n.Content) == 0 {
		return // an empty list is the zero value
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		d.value(e, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
	}
	v.Set(s)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "section"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	}
	return "YAML node"
}
