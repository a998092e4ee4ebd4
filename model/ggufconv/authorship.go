package ggufconv

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Authorship is the general.* metadata that says what a model is and where
// it came from: gguf-py's Metadata (gguf/metadata.py) without the sampling
// fields. An empty string or a nil list is unset and not written.
type Authorship struct {
	Name, Author, Version, Organization string
	Finetune, Basename, Description     string
	QuantizedBy, SizeLabel              string
	License, LicenseName, LicenseLink   string
	URL, DOI, UUID, RepoURL             string
	SourceURL, SourceDOI, SourceUUID    string
	SourceRepoURL                       string
	BaseModels                          []Lineage // general.base_model.N.*
	Datasets                            []Lineage // general.dataset.N.*
	Tags, Languages                     []string
}

// Lineage is one base model or dataset: general.base_model.N.<field>.
type Lineage struct {
	Name, Author, Version, Organization, Description, URL, DOI, UUID, RepoURL string
}

// OverrideKeys are the metadata names Options.Metadata.Set accepts: the
// general.* keys without their prefix, as llama.cpp's --metadata override
// file names them.
func OverrideKeys() []string {
	return []string{"author", "version", "organization", "finetune", "basename", "description",
		"quantized_by", "size_label", "license", "license.name", "license.link", "url", "doi", "uuid",
		"repo_url", "source.url", "source.doi", "source.uuid", "source.repo_url"}
}

// field returns the string field a key of OverrideKeys names.
func (a *Authorship) field(key string) *string {
	switch key {
	case "name":
		return &a.Name
	case "author":
		return &a.Author
	case "version":
		return &a.Version
	case "organization":
		return &a.Organization
	case "finetune":
		return &a.Finetune
	case "basename":
		return &a.Basename
	case "description":
		return &a.Description
	case "quantized_by":
		return &a.QuantizedBy
	case "size_label":
		return &a.SizeLabel
	case "license":
		return &a.License
	case "license.name":
		return &a.LicenseName
	case "license.link":
		return &a.LicenseLink
	case "url":
		return &a.URL
	case "doi":
		return &a.DOI
	case "uuid":
		return &a.UUID
	case "repo_url":
		return &a.RepoURL
	case "source.url":
		return &a.SourceURL
	case "source.doi":
		return &a.SourceDOI
	case "source.uuid":
		return &a.SourceUUID
	case "source.repo_url":
		return &a.SourceRepoURL
	}
	return nil
}

// Set sets the field a key of OverrideKeys names; false for another key.
func (a *Authorship) Set(key, value string) bool {
	if key == "name" {
		return false // Options.Name
	}
	p := a.field(key)
	if p == nil {
		return false
	}
	*p = value
	return true
}

// entries are the keys set_gguf_meta_model writes, in its order.
func (a *Authorship) entries() []kv {
	var out []kv
	str := func(key, v string) {
		if v != "" {
			out = append(out, kv{key, v})
		}
	}
	str("general.name", a.Name)
	str("general.author", a.Author)
	str("general.version", a.Version)
	str("general.organization", a.Organization)
	str("general.finetune", a.Finetune)
	str("general.basename", a.Basename)
	str("general.description", a.Description)
	str("general.quantized_by", a.QuantizedBy)
	str("general.size_label", a.SizeLabel)
	str("general.license", a.License)
	str("general.license.name", a.LicenseName)
	str("general.license.link", a.LicenseLink)
	str("general.url", a.URL)
	str("general.doi", a.DOI)
	str("general.uuid", a.UUID)
	str("general.repo_url", a.RepoURL)
	str("general.source.url", a.SourceURL)
	str("general.source.doi", a.SourceDOI)
	str("general.source.uuid", a.SourceUUID)
	str("general.source.repo_url", a.SourceRepoURL)
	lineage := func(prefix string, list []Lineage) {
		if list == nil {
			return
		}
		out = append(out, kv{prefix + ".count", uint32(len(list))})
		for i, l := range list {
			p := prefix + "." + strconv.Itoa(i) + "."
			str(p+"name", l.Name)
			str(p+"author", l.Author)
			str(p+"version", l.Version)
			str(p+"organization", l.Organization)
			str(p+"description", l.Description)
			str(p+"url", l.URL)
			str(p+"doi", l.DOI)
			str(p+"uuid", l.UUID)
			str(p+"repo_url", l.RepoURL)
		}
	}
	lineage("general.base_model", a.BaseModels)
	lineage("general.dataset", a.Datasets)
	if a.Tags != nil {
		out = append(out, kv{"general.tags", a.Tags})
	}
	if a.Languages != nil {
		out = append(out, kv{"general.languages", a.Languages})
	}
	return out
}

// ModelID is what gguf-py's Metadata.get_model_id_components reads from a
// Hugging Face model id ("TinyLlama/TinyLlama-1.1B-Chat-v1.0") or a
// directory name: the full name, the organisation, and the parts of the
// name that are its basename, finetune, version and size label.
type ModelID struct {
	FullName, Org                          string
	Basename, Finetune, Version, SizeLabel string
}

var (
	reVersion   = regexp.MustCompile(`(?i)^(?:(v|iter)?\d+([.]\d+)*)$`)
	reQuant     = regexp.MustCompile(`(?i)^(?:i?q\d(_\w)*|b?fp?(16|32))$`)
	reSize      = regexp.MustCompile(`(?i)^(?:(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl))$`)
	reFinetune  = regexp.MustCompile(`(?i)^(?:chat|instruct|vision|lora)$`)
	reTitleKeep = regexp.MustCompile(`^(v\d+(?:\.\d+)*|\d.*)$`)
	reHFURL     = regexp.MustCompile(`^https?://huggingface.co/([^/]+/[^/]+)$`)
)

// ParseModelID is get_model_id_components for a model of totalParams
// weights (a size in the name far from it is taken for a context length,
// part of the finetune). An empty id gives the zero ModelID.
func ParseModelID(id string, totalParams int64) ModelID {
	if id == "" {
		return ModelID{}
	}
	if strings.Contains(id, " ") {
		return ModelID{FullName: id}
	}
	var m ModelID
	if org, name, ok := strings.Cut(id, "/"); ok {
		m.Org, m.FullName = org, name
		if strings.HasPrefix(org, ".") {
			m.Org = ""
		}
	} else {
		m.FullName = id
	}
	var parts []string
	for p := range strings.SplitSeq(m.FullName, "-") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	types := make([]map[string]bool, len(parts))
	for i, part := range parts {
		t := map[string]bool{}
		types[i] = t
		switch {
		case reVersion.MatchString(part):
			t["version"] = true
		case reQuant.MatchString(part):
			t["type"] = true
			parts[i] = strings.ToUpper(part)
		case i > 0 && reSize.MatchString(part):
			part = strings.ReplaceAll(part, "_", ".")
			if isDecimal(part[len(part)-1]) { // bloom-7b1: 7.1b
				n := len(part)
				part = part[:n-2] + "." + part[n-1:] + part[n-2:n-1]
			}
			if n := len(part); n > 1 && isDecimal(part[n-2]) && strings.ContainsRune("kmbt", rune(part[n-1])) {
				part = part[:n-1] + strings.ToUpper(part[n-1:])
			}
			if totalParams != 0 {
				n := len(part)
				// Python's float() and ParseFloat refuse the same sizes
				// here ("8x7", "A3"): the regexp admits no other forms.
				if f, err := strconv.ParseFloat(part[:n-1], 64); err == nil {
					label := f * math.Pow(1000, float64(strings.IndexByte(" KMBT", part[n-1])))
					if totalParams > 0 && math.Abs(label-float64(totalParams)) > float64(7*totalParams/8) {
						t["finetune"] = true // a context length
						part = part[:n-1] + strings.ToLower(part[n-1:])
					}
				}
			}
			if len(t) == 0 {
				t["size_label"] = true
			}
			parts[i] = part
		case i > 0 && reFinetune.MatchString(part):
			t["finetune"] = true
		}
	}
	// Word sizes (small, xl) are dropped when a numeric size is present.
	numeric := false
	for i, p := range parts {
		if types[i]["size_label"] && strings.ContainsFunc(p, func(r rune) bool { return r >= '0' && r <= '9' }) {
			numeric = true
		}
	}
	if numeric {
		for i, p := range parts {
			if types[i]["size_label"] && !strings.ContainsFunc(p, func(r rune) bool { return !unicode.IsLetter(r) }) {
				delete(types[i], "size_label")
			}
		}
	}
	atStart := true
	for i, p := range parts {
		t := types[i]
		if atStart && ((len(t) == 0 && unicode.IsLetter(rune(p[0]))) || t["version"]) {
			t["basename"] = true
			continue
		}
		atStart = false
		if len(t) == 0 {
			t["finetune"] = true
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if t := types[i]; t["basename"] && len(t) > 1 {
			delete(t, "basename")
		} else {
			break
		}
	}
	join := func(want string, skip string, dedupe bool) string {
		var out []string
		for i, p := range parts {
			if types[i][want] && (skip == "" || !types[i][skip]) && !(dedupe && slices.Contains(out, p)) {
				out = append(out, p)
			}
		}
		return strings.Join(out, "-")
	}
	m.Basename = join("basename", "", false)
	m.SizeLabel = join("size_label", "", true)
	m.Finetune = join("finetune", "", false)
	m.Version = join("version", "basename", false)
	if m.SizeLabel == "" && m.Finetune == "" && m.Version == "" {
		m.Basename = "" // too ambiguous
	}
	return m
}

func isDecimal(c byte) bool { return c >= '0' && c <= '9' }

// IDToTitle is gguf-py's Metadata.id_to_title: dashes become spaces, and
// each all-lowercase word that is not a version or a number is
// title-cased as Python's str.title does ("tinyllama-1.1b-chat" ->
// "Tinyllama 1.1b Chat").
func IDToTitle(s string) string {
	words := strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "-", " "))
	for i, w := range words {
		if pyIsLower(w) && !reTitleKeep.MatchString(w) {
			words[i] = pyTitle(w)
		}
	}
	return strings.Join(words, " ")
}

// pyIsLower is str.islower: some cased letter, none upper case.
func pyIsLower(s string) bool {
	cased := false
	for _, r := range s {
		if unicode.IsUpper(r) || unicode.IsTitle(r) {
			return false
		}
		if unicode.IsLower(r) {
			cased = true
		}
	}
	return cased
}

// pyTitle is str.title: a letter after a non-letter is upper case, every
// other letter lower case.
func pyTitle(s string) string {
	var b strings.Builder
	prevLetter := false
	for _, r := range s {
		letter := unicode.IsLetter(r)
		switch {
		case letter && !prevLetter:
			b.WriteRune(unicode.ToTitle(r))
		case letter:
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
		prevLetter = letter
	}
	return b.String()
}

// lineageOf reads a base model or dataset named by a model card: a
// Hugging Face id ("org/name") or a URL, as apply_metadata_heuristic does.
// (The converter passes the model's size too, which changes none of the
// fields it keeps.)
func lineageOf(id string) Lineage {
	var l Lineage
	fill := func(m ModelID) {
		if m.FullName != "" {
			l.Name = IDToTitle(m.FullName)
		}
		if m.Org != "" {
			l.Organization = IDToTitle(m.Org)
		}
		l.Version = m.Version
	}
	if strings.HasPrefix(id, "http://") || strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "ssh://") {
		l.RepoURL = id
		if strings.Contains(id, "huggingface.co") {
			if sub := reHFURL.FindStringSubmatch(id); sub != nil {
				fill(ParseModelID(sub[1], 0))
			}
		}
		return l
	}
	m := ParseModelID(id, 0)
	fill(m)
	if m.Org != "" && m.FullName != "" {
		l.RepoURL = "https://huggingface.co/" + m.Org + "/" + m.FullName
	}
	return l
}
