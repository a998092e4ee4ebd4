package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"unicode/utf8"
)

// TokenType is a token's kind in SentencePiece's numbering, which GGUF's
// tokenizer.ggml.token_type uses too.
type TokenType int32

// Token types.
const (
	TokenNormal      TokenType = 1
	TokenUnknown     TokenType = 2
	TokenControl     TokenType = 3
	TokenUserDefined TokenType = 4
	TokenUnused      TokenType = 5
	TokenByte        TokenType = 6
)

// Piece is one entry of a SentencePiece vocabulary.
type Piece struct {
	Piece string
	Score float32
	Type  TokenType
}

// SentencePiece is what cogumi reads from a tokenizer.model (a serialized
// sentencepiece.ModelProto): the pieces, and the few trainer and normalizer
// settings that matter to a converter.
type SentencePiece struct {
	Pieces []Piece
	// From trainer_spec (proto defaults when absent): model_type (1 unigram,
	// 2 BPE, 3 word, 4 char), byte_fallback and the special ids.
	ModelType                     int
	ByteFallback                  bool
	UnkID, BOSID, EOSID, PadID    int
	HasTrainerSpec, HasNormalizer bool
	// From normalizer_spec: add_dummy_prefix (default true) and
	// remove_extra_whitespaces (default true).
	AddDummyPrefix, RemoveExtraWhitespaces bool
}

// ReadSentencePiece reads a SentencePiece tokenizer.model.
func ReadSentencePiece(path string) (*SentencePiece, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	sp, err := ParseSentencePiece(b)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return sp, nil
}

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// protoReader walks one protobuf message. Every read is bounds-checked, so
// hostile input yields an error, never a panic.
type protoReader struct {
	b   []byte
	pos int
}

func (r *protoReader) more() bool { return r.pos < len(r.b) }

func (r *protoReader) varint() (uint64, error) {
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 {
		return 0, fmt.Errorf("bad varint at byte %d", r.pos)
	}
	r.pos += n
	return v, nil
}

// field reads the next key and its value: varints and fixed values as a
// number, length-delimited values as bytes.
func (r *protoReader) field() (num int, wire int, v uint64, b []byte, err error) {
	key, err := r.varint()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	num, wire = int(key>>3), int(key&7)
	if num == 0 {
		return 0, 0, 0, nil, fmt.Errorf("field number 0 at byte %d", r.pos)
	}
	switch wire {
	case wireVarint:
		v, err = r.varint()
	case wireFixed64:
		if len(r.b)-r.pos < 8 {
			return 0, 0, 0, nil, errors.New("truncated fixed64 field")
		}
		v = binary.LittleEndian.Uint64(r.b[r.pos:])
		r.pos += 8
	case wireFixed32:
		if len(r.b)-r.pos < 4 {
			return 0, 0, 0, nil, errors.New("truncated fixed32 field")
		}
		v = uint64(binary.LittleEndian.Uint32(r.b[r.pos:]))
		r.pos += 4
	case wireBytes:
		var n uint64
		if n, err = r.varint(); err != nil {
			return 0, 0, 0, nil, err
		}
		if n > uint64(len(r.b)-r.pos) {
			return 0, 0, 0, nil, fmt.Errorf("field %d claims %d bytes, %d left", num, n, len(r.b)-r.pos)
		}
		b = r.b[r.pos : r.pos+int(n)]
		r.pos += int(n)
	default:
		return 0, 0, 0, nil, fmt.Errorf("unsupported wire type %d (field %d)", wire, num)
	}
	return num, wire, v, b, err
}

// ParseSentencePiece decodes a serialized ModelProto: field 1 repeated
// SentencePiece {1: piece, 2: score (float), 3: type}, 2 trainer_spec, 3
// normalizer_spec; other fields are skipped.
func ParseSentencePiece(b []byte) (*SentencePiece, error) {
	sp := &SentencePiece{ModelType: 1, UnkID: 0, BOSID: 1, EOSID: 2, PadID: -1,
		AddDummyPrefix: true, RemoveExtraWhitespaces: true}
	r := &protoReader{b: b}
	for r.more() {
		num, wire, _, val, err := r.field()
		if err != nil {
			return nil, fmt.Errorf("not a SentencePiece model: %w", err)
		}
		if wire != wireBytes {
			continue
		}
		switch num {
		case 1:
			p, err := parsePiece(val, len(sp.Pieces))
			if err != nil {
				return nil, err
			}
			sp.Pieces = append(sp.Pieces, p)
		case 2:
			sp.HasTrainerSpec = true
			if err := parseTrainerSpec(val, sp); err != nil {
				return nil, fmt.Errorf("trainer_spec: %w", err)
			}
		case 3:
			sp.HasNormalizer = true
			if err := parseNormalizerSpec(val, sp); err != nil {
				return nil, fmt.Errorf("normalizer_spec: %w", err)
			}
		}
	}
	if len(sp.Pieces) == 0 {
		return nil, errors.New("not a SentencePiece model: no pieces")
	}
	return sp, nil
}

func parsePiece(b []byte, i int) (Piece, error) {
	p := Piece{Type: TokenNormal}
	hasPiece := false
	r := &protoReader{b: b}
	for r.more() {
		num, wire, v, val, err := r.field()
		if err != nil {
			return Piece{}, fmt.Errorf("piece %d: %w", i, err)
		}
		switch {
		case num == 1 && wire == wireBytes:
			if !utf8.Valid(val) {
				return Piece{}, fmt.Errorf("piece %d is not valid UTF-8", i)
			}
			p.Piece, hasPiece = string(val), true
		case num == 2 && wire == wireFixed32:
			p.Score = math.Float32frombits(uint32(v))
		case num == 3 && wire == wireVarint:
			if v < uint64(TokenNormal) || v > uint64(TokenByte) {
				return Piece{}, fmt.Errorf("piece %d (%q) has unknown type %d", i, p.Piece, v)
			}
			p.Type = TokenType(v)
		}
	}
	if !hasPiece {
		return Piece{}, fmt.Errorf("piece %d has no text", i)
	}
	return p, nil
}

func parseTrainerSpec(b []byte, sp *SentencePiece) error {
	r := &protoReader{b: b}
	for r.more() {
		num, wire, v, _, err := r.field()
		if err != nil {
			return err
		}
		if wire != wireVarint {
			continue
		}
		switch num {
		case 3:
			sp.ModelType = int(v)
		case 35:
			sp.ByteFallback = v != 0
		case 40:
			sp.UnkID = int(int32(v)) // int32 fields: negatives are sign-extended
		case 41:
			sp.BOSID = int(int32(v))
		case 42:
			sp.EOSID = int(int32(v))
		case 43:
			sp.PadID = int(int32(v))
		}
	}
	return nil
}

func parseNormalizerSpec(b []byte, sp *SentencePiece) error {
	r := &protoReader{b: b}
	for r.more() {
		num, wire, v, _, err := r.field()
		if err != nil {
			return err
		}
		if wire != wireVarint {
			continue
		}
		switch num {
		case 3:
			sp.AddDummyPrefix = v != 0
		case 4:
			sp.RemoveExtraWhitespaces = v != 0
		}
	}
	return nil
}
