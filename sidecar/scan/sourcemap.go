package scan

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Source is one original source carried in a source map.
type Source struct {
	// Name is the entry of "sources", joined to "sourceRoot" when set:
	// often "webpack://app/./src/api.js".
	Name string
	// Content is the matching "sourcesContent" entry.
	Content string
}

// sourceMap is the part of a Source Map Revision 3 document the scanner
// reads: the original sources' names and contents, and the sections of
// an index map.
//
// https://tc39.es/ecma426/#sec-source-map-format
type sourceMap struct {
	Version        int       `json:"version"`
	SourceRoot     string    `json:"sourceRoot"`
	Sources        []*string `json:"sources"`
	SourcesContent []*string `json:"sourcesContent"`
	Sections       []struct {
		Map *sourceMap `json:"map"`
	} `json:"sections"`
}

// maxSectionDepth bounds index maps inside index maps (the spec allows
// none; a hostile file may nest them).
const maxSectionDepth = 4

// ErrNotSourceMap is returned by [ParseSourceMap] for JSON that is not a
// version 3 source map.
var ErrNotSourceMap = errors.New("scan: not a version 3 source map")

// ParseSourceMap returns the original sources embedded in a source map's
// sourcesContent (sources without content are left out), in order,
// including those of an index map's sections.
func ParseSourceMap(data []byte) ([]Source, error) {
	var m sourceMap
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("scan: source map: %w", err)
	}
	var out []Source
	if err := m.collect(&out, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func (m *sourceMap) collect(out *[]Source, depth int) error {
	if m.Version != 3 || depth > maxSectionDepth {
		return ErrNotSourceMap
	}
	for i, c := range m.SourcesContent {
		if c == nil {
			continue
		}
		name := fmt.Sprintf("source-%d", i)
		if i < len(m.Sources) && m.Sources[i] != nil && *m.Sources[i] != "" {
			name = *m.Sources[i]
		}
		if m.SourceRoot != "" && !strings.Contains(name, "://") && !path.IsAbs(name) {
			name = strings.TrimSuffix(m.SourceRoot, "/") + "/" + name
		}
		*out = append(*out, Source{Name: name, Content: *c})
	}
	for _, s := range m.Sections {
		if s.Map == nil {
			continue
		}
		if err := s.Map.collect(out, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// inlineMap finds a source map inlined as a data URL at the end of a
// bundle (webpack's and esbuild's "inline" source maps).
var inlineMap = regexp.MustCompile(`sourceMappingURL=data:application/json;(?:charset=[\w-]+;)?base64,([A-Za-z0-9+/]+={0,2})`)

// scanInlineSourceMaps scans the original sources of any inline source
// map in text, naming them "bundle.js!/<source>". A data URL longer than
// a chunk is cut, fails to decode and is skipped; the minified code it
// maps is scanned anyway.
func (r *run) scanInlineSourceMaps(fs *fileState, text string) {
	if !strings.Contains(text, "sourceMappingURL=data:") {
		return
	}
	for _, m := range inlineMap.FindAllStringSubmatchIndex(text, -1) {
		b64 := text[m[2]:m[3]]
		data, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		srcs, err := ParseSourceMap(data)
		if err != nil {
			continue
		}
		key := fmt.Sprintf("inline@%d:%d", len(b64), len(srcs))
		if fs.once[key] {
			continue
		}
		fs.once[key] = true
		r.scanSources(fs.name, fs.blob, srcs)
	}
}

// scanSources scans each original source of a source map as a file
// inside it.
func (r *run) scanSources(name, blob string, srcs []Source) {
	for _, s := range srcs {
		if err := r.scanText(name+"!/"+s.Name, blob, strings.NewReader(s.Content)); err != nil {
			r.skip(name+"!/"+s.Name, "could not read: "+err.Error(), false)
		}
	}
}
