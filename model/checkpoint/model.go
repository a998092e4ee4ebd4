// Package checkpoint opens Hugging Face Llama-family checkpoint directories
// (config.json, safetensors weights in one file or in shards with
// model.safetensors.index.json, a SentencePiece or BPE tokenizer), validates
// them up front, and writes new checkpoints in the same layout.
//
// A checkpoint comes from outside (a download, a training run), so Open
// checks everything a later rule relies on: the configuration, every shard's
// header, the index against the shards, the tensors' names, dtypes and shapes
// against the configuration, and the tokenizer. A bad checkpoint gets one
// message naming the file, the tensor and the problem.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/cogumi/cogumi/model/safetensors"
)

// File names of a Hugging Face checkpoint.
const (
	ConfigFile           = "config.json"
	SingleWeightsFile    = "model.safetensors"
	IndexFile            = "model.safetensors.index.json"
	SentencePieceFile    = "tokenizer.model"
	TokenizerJSONFile    = "tokenizer.json"
	TokenizerConfigFile  = "tokenizer_config.json"
	GenerationConfigFile = "generation_config.json"
)

// TokenizerKind says which tokenizer a checkpoint carries.
type TokenizerKind string

// Tokenizer kinds.
const (
	SentencePieceTokenizer TokenizerKind = "sentencepiece" // tokenizer.model (TinyLlama, Llama 2)
	BPETokenizer           TokenizerKind = "bpe"           // byte-level tokenizer.json (Llama 3)
	// HFSentencePieceTokenizer is a tokenizer.json made from a SentencePiece
	// model (BPE with byte fallback: Llama 2, Mistral and TinyLlama
	// without their tokenizer.model), which llama.cpp runs as SentencePiece.
	HFSentencePieceTokenizer TokenizerKind = "hf-sentencepiece"
)

// TensorRef describes one tensor of a checkpoint and the shard holding it.
type TensorRef struct {
	Name  string
	DType safetensors.DType
	Shape []int64
	Shard string // file name of the shard, relative to the checkpoint directory
}

// Model is an open checkpoint. Its weights stay memory-mapped until Close.
type Model struct {
	dir       string
	cfg       Config
	shards    []string // file names, sorted
	files     map[string]*safetensors.File
	tensors   []TensorRef
	byName    map[string]int
	indexed   bool            // weights listed by model.safetensors.index.json
	indexMeta json.RawMessage // the index's "metadata" object, as written
	tokKind   TokenizerKind
	spm       *SentencePiece
	hftok     *HFTokenizer
}

// Open opens and validates the checkpoint in dir (the directory holding
// config.json; see Find for artifacts that hold one below their root).
func Open(dir string) (*Model, error) {
	if !exists(filepath.Join(dir, ConfigFile)) {
		return nil, fmt.Errorf("checkpoint %s: no %s: not a Hugging Face checkpoint directory", dir, ConfigFile)
	}
	cfg, err := readConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	m := &Model{dir: dir, cfg: cfg, files: make(map[string]*safetensors.File), byName: make(map[string]int)}
	for _, step := range []func() error{m.openWeights, m.checkTensors, m.openTokenizer} {
		if err := step(); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

func exists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func (m *Model) openWeights() error {
	indexPath := filepath.Join(m.dir, IndexFile)
	if !exists(indexPath) {
		if !exists(filepath.Join(m.dir, SingleWeightsFile)) {
			if bins, _ := filepath.Glob(filepath.Join(m.dir, "*.bin")); len(bins) > 0 {
				return fmt.Errorf("checkpoint %s: no %s or %s, only PyTorch .bin weights; save the model with safe_serialization=True",
					m.dir, SingleWeightsFile, IndexFile)
			}
			return fmt.Errorf("checkpoint %s: no %s or %s: the checkpoint has no weights", m.dir, SingleWeightsFile, IndexFile)
		}
		return m.addShard(SingleWeightsFile, nil)
	}
	b, err := os.ReadFile(indexPath)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	var index struct {
		Metadata  json.RawMessage   `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return fmt.Errorf("checkpoint %s: not valid JSON: %v", indexPath, err)
	}
	if len(index.WeightMap) == 0 {
		return fmt.Errorf("checkpoint %s: weight_map is missing or empty", indexPath)
	}
	m.indexed, m.indexMeta = true, index.Metadata
	want := make(map[string][]string) // shard -> tensors the index puts there
	for tensor, shard := range index.WeightMap {
		// The index comes from outside: a shard name must not reach out of
		// the checkpoint directory.
		if shard == "" || shard != filepath.Base(shard) || shard == "." || shard == ".." || strings.ContainsRune(shard, '\\') {
			return fmt.Errorf("checkpoint %s: tensor %q: shard %q is not a plain file name", indexPath, tensor, shard)
		}
		want[shard] = append(want[shard], tensor)
	}
	for shard := range want {
		if !exists(filepath.Join(m.dir, shard)) {
			return fmt.Errorf("checkpoint %s: shard %s, listed for tensor %q, does not exist", indexPath, shard, want[shard][0])
		}
	}
	shards := make([]string, 0, len(want))
	for s := range want {
		shards = append(shards, s)
	}
	sort.Strings(shards)
	for _, s := range shards {
		if err := m.addShard(s, want[s]); err != nil {
			return err
		}
	}
	for tensor, shard := range index.WeightMap {
		if _, ok := m.byName[tensor]; !ok {
			return fmt.Errorf("checkpoint %s: tensor %q: the index puts it in %s, which does not hold it", indexPath, tensor, shard)
		}
	}
	return nil
}

// addShard opens one safetensors file and registers its tensors. listed is
// what the index says the shard holds (nil for an unsharded checkpoint).
func (m *Model) addShard(name string, listed []string) error {
	path := filepath.Join(m.dir, name)
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	m.shards = append(m.shards, name)
	m.files[name] = f
	for _, info := range f.Infos() {
		if listed != nil && !slices.Contains(listed, info.Name) {
			return fmt.Errorf("checkpoint %s: tensor %q is not listed for this shard in %s", path, info.Name, IndexFile)
		}
		if prev, dup := m.byName[info.Name]; dup {
			return fmt.Errorf("checkpoint %s: tensor %q is also in %s", path, info.Name, m.tensors[prev].Shard)
		}
		m.byName[info.Name] = len(m.tensors)
		m.tensors = append(m.tensors, TensorRef{Name: info.Name, DType: info.DType, Shape: info.Shape, Shard: name})
	}
	return nil
}

// checkTensors verifies that every tensor the architecture needs (see
// Config.Tensors) is present, floating-point, and shaped as config.json
// says.
func (m *Model) checkTensors() error {
	c := &m.cfg
	for _, w := range c.Tensors() {
		t, ok := m.Tensor(w.Name)
		if !ok {
			return fmt.Errorf("checkpoint %s: tensor %q is missing (config.json describes a %d-layer %s)",
				m.dir, w.Name, c.NumHiddenLayers, c.Arch.Architecture)
		}
		if !t.DType.IsFloat() {
			return fmt.Errorf("checkpoint %s: tensor %q in %s has dtype %s; cogumi reads F32, F16 and BF16 weights",
				m.dir, w.Name, t.Shard, t.DType)
		}
		if !slices.Equal(t.Shape, w.Shape) {
			return fmt.Errorf("checkpoint %s: tensor %q in %s has shape %v, but config.json implies %v",
				m.dir, w.Name, t.Shard, t.Shape, w.Shape)
		}
	}
	return nil
}

func (m *Model) openTokenizer() error {
	spPath, jsPath := filepath.Join(m.dir, SentencePieceFile), filepath.Join(m.dir, TokenizerJSONFile)
	switch {
	// Like llama.cpp's converter, prefer tokenizer.model when both exist
	// (Llama 2 repositories ship both; the .model is the original).
	case exists(spPath):
		sp, err := ReadSentencePiece(spPath)
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		m.tokKind, m.spm = SentencePieceTokenizer, sp
	case exists(jsPath):
		t, err := ReadTokenizerJSON(jsPath)
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		m.tokKind, m.hftok = BPETokenizer, t
		if t.SentencePieceStyle() {
			m.tokKind = HFSentencePieceTokenizer
		}
	default:
		return fmt.Errorf("checkpoint %s: no tokenizer: expected %s (SentencePiece) or %s (BPE)", m.dir, SentencePieceFile, TokenizerJSONFile)
	}
	return nil
}

// Dir returns the checkpoint directory.
func (m *Model) Dir() string { return m.dir }

// Config returns the parsed config.json, defaults applied.
func (m *Model) Config() Config { return m.cfg }

// TokenizerKind says which tokenizer the checkpoint carries.
func (m *Model) TokenizerKind() TokenizerKind { return m.tokKind }

// SentencePiece returns the parsed tokenizer.model (nil for a BPE tokenizer).
func (m *Model) SentencePiece() *SentencePiece { return m.spm }

// TokenizerJSON returns the parsed tokenizer.json (nil for tokenizer.model).
func (m *Model) TokenizerJSON() *HFTokenizer { return m.hftok }

// Sharded reports whether the weights come with model.safetensors.index.json.
func (m *Model) Sharded() bool { return m.indexed }

// Shards returns the weight files' names, sorted.
func (m *Model) Shards() []string { return slices.Clone(m.shards) }

// Tensors returns every tensor: shards in name order, tensors in file order
// within a shard. Reading tensors in this order reads each file sequentially.
func (m *Model) Tensors() []TensorRef {
	out := make([]TensorRef, len(m.tensors))
	for i, t := range m.tensors {
		t.Shape = slices.Clone(t.Shape)
		out[i] = t
	}
	return out
}

// Tensor returns the named tensor's description.
func (m *Model) Tensor(name string) (TensorRef, bool) {
	i, ok := m.byName[name]
	if !ok {
		return TensorRef{}, false
	}
	t := m.tensors[i]
	t.Shape = slices.Clone(t.Shape)
	return t, true
}

// Bytes returns the named tensor's raw little-endian data: a read-only slice
// of the memory-mapped shard, valid until Close.
func (m *Model) Bytes(name string) ([]byte, error) {
	i, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: no tensor %q", m.dir, name)
	}
	return m.files[m.tensors[i].Shard].Bytes(name), nil
}

// ReadF32Rows converts rows [row0, row0+nrows) of the named tensor to
// float32 in dst (see safetensors.File.ReadF32Rows).
func (m *Model) ReadF32Rows(name string, row0, nrows int, dst []float32) error {
	i, ok := m.byName[name]
	if !ok {
		return fmt.Errorf("checkpoint %s: no tensor %q", m.dir, name)
	}
	return m.files[m.tensors[i].Shard].ReadF32Rows(name, row0, nrows, dst)
}

// ShardMetadata returns the __metadata__ of a shard (usually {"format": "pt"}).
func (m *Model) ShardMetadata(shard string) map[string]string {
	if f, ok := m.files[shard]; ok {
		return f.Metadata()
	}
	return nil
}

// Close unmaps every shard. Slices from Bytes are invalid afterwards.
func (m *Model) Close() error {
	var errs []error
	for _, s := range m.shards {
		errs = append(errs, m.files[s].Close())
	}
	return errors.Join(errs...)
}
