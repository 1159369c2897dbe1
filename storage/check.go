package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
)

// DamageError says that the state store's files are damaged: which file,
// what is wrong. Opening such a store with Badger would lose data silently
// (tables its MANIFEST no longer lists are deleted, so a truncated MANIFEST
// opens as an empty store) or panic in one of its goroutines (a truncated
// table), so Open refuses it first.
type DamageError struct {
	Dir     string
	File    string // path of the damaged file
	Problem string
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("state store %s is damaged: %s: %s", e.Dir, e.File, e.Problem)
}

// manifestName is Badger's manifest file.
const manifestName = "MANIFEST"

// HasState says whether dir holds a state store (Badger writes its MANIFEST
// on the first open, before anything else).
func HasState(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, manifestName))
	return err == nil
}

// CheckFiles verifies a state store's files before Badger opens them: the
// MANIFEST replays to its end, every table it lists exists and every block
// of every table passes its checksum (read with Badger's own reader, panics
// recovered), and no table holding data is left out of the MANIFEST. A
// missing or empty directory is fine (a new store). Read-only.
func CheckFiles(dir string) (err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read state store %s: %w", dir, err)
	}
	onDisk := map[uint64]string{}
	for _, e := range ents {
		if id, ok := table.ParseFileID(e.Name()); ok && strings.HasSuffix(e.Name(), ".sst") {
			onDisk[id] = filepath.Join(dir, e.Name())
		}
	}
	mpath := filepath.Join(dir, manifestName)
	damaged := func(file, format string, args ...any) error {
		return &DamageError{Dir: dir, File: file, Problem: fmt.Sprintf(format, args...)}
	}
	f, err := os.Open(mpath)
	if errors.Is(err, os.ErrNotExist) {
		if len(onDisk) > 0 {
			return damaged(mpath, "missing, while %d table files are there", len(onDisk))
		}
		return nil
	} else if err != nil {
		return fmt.Errorf("read %s: %w", mpath, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", mpath, err)
	}
	mf, end, err := replayManifest(f)
	if err != nil {
		return damaged(mpath, "unreadable (%v)", err)
	}
	var orphans []string
	for id, path := range onDisk {
		if _, ok := mf.Tables[id]; !ok {
			orphans = append(orphans, filepath.Base(path))
		}
	}
	sort.Strings(orphans)
	// A crash may leave a partial last record, or a table written just
	// before its record; Badger handles either. Both at once, or tables
	// beside a MANIFEST that lists none, is a cut MANIFEST: opening would
	// delete those tables.
	if len(orphans) > 0 && (end < st.Size() || len(mf.Tables) == 0) {
		return damaged(mpath, "cut short (it ends after %d of %d bytes) and no longer lists tables %s", end, st.Size(), strings.Join(orphans, ", "))
	}
	ids := make([]uint64, 0, len(mf.Tables))
	for id := range mf.Tables {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		path := table.NewFilename(id, dir)
		if _, ok := onDisk[id]; !ok {
			return damaged(path, "missing (the MANIFEST lists it)")
		}
		if err := checkTable(path, mf.Tables[id]); err != nil {
			return damaged(path, "%v", err)
		}
	}
	return nil
}

func replayManifest(f *os.File) (m badger.Manifest, end int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return badger.ReplayManifestFile(f, 0, BadgerOptions(filepath.Dir(f.Name())))
}

// checkTable reads every block of one table, verifying checksums.
func checkTable(path string, tm badger.TableManifest) (err error) {
	defer func() {
		if r := recover(); r != nil {
			// Badger's panic text spans lines of its own diagnostics.
			err = errors.New("unreadable: Badger's table reader failed on it (the file is cut short or corrupt)")
		}
	}()
	if tm.KeyID != 0 {
		return nil // encrypted tables: Badger checks them itself (we never encrypt)
	}
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil && !errors.Is(err, z.NewFile) {
		return err
	}
	opt := BadgerOptions(filepath.Dir(path))
	t, err := table.OpenTable(mf, table.Options{
		ReadOnly:             true,
		ChkMode:              options.OnTableRead, // every block, at open
		BlockSize:            opt.BlockSize,
		BloomFalsePositive:   opt.BloomFalsePositive,
		Compression:          tm.Compression,
		ZSTDCompressionLevel: opt.ZSTDCompressionLevel,
	})
	if err != nil {
		return fmt.Errorf("unreadable (%s)", oneLine(err.Error()))
	}
	// Not DecrRef: at zero references it deletes the file.
	return t.MmapFile.Close(-1)
}

// oneLine keeps an error text to one line for a log or a refusal.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
