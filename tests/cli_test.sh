#!/usr/bin/env bash
# Command-line behaviour of `rapid`: exit codes, messages, output.
set -u
rapid=$1
. "$(dirname "$0")/checks.sh"

check help 0 "$rapid" --help; expect "help lists tile" "$(grep -q '^  tile' <<<"$out"; echo $?)"
check noargs 2 "$rapid"
check unknown 2 "$rapid" frobnicate; expect "unknown names it" "$(grep -q frobnicate <<<"$err"; echo $?)"
check version 0 "$rapid" version; expect "version format" "$(grep -Eq '^rapid [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-z-]+\)$' <<<"$out"; echo $?)"
check version-help 0 "$rapid" version --help

# --- rapid tile
tmp=${RAPID_TEST_TMP:-/tmp}/cli.$$; mkdir -p "$tmp"
check tile-published 0 "$rapid" tile 11.1 -43.8
expect "tile json keys" "$(grep -Eq '^\{"rtid": 5321355, "cra": 11\.067073[0-9]*, "cdec": -43\.80448[0-9]*, "ramin": 11\.02134[0-9]*, "ramax": 11\.11280[0-9]*, "decmin": -43\.85415[0-9]*, "decmax": -43\.75481[0-9]*, "dbid": 493, "nrabins": 3936\}$' <<<"$out"; echo $?)"
check tile-rtid 0 "$rapid" tile --rtid 2
expect "rtid 2" "$(grep -q '"cdec": 89.9086' <<<"$out" && grep -q '"ramin": -22.5,' <<<"$out"; echo $?)"
check tile-neighbors 0 "$rapid" tile --neighbors --rtid 5321355
expect "neighbors listed ascending" "$(grep -q '"neighbors": \[5317411, 5317412, 5321354, 5321356, 5325290, 5325291\]' <<<"$out"; echo $?)"
check tile-neighbors-after 0 "$rapid" tile 11.1 -43.8 --neighbors
expect "option after position" "$(grep -q '"neighbors"' <<<"$out"; echo $?)"
check tile-north-cap 0 "$rapid" tile 0 90
expect "north cap" "$(grep -q '"rtid": 1,' <<<"$out"; echo $?)"
check tile-wrap 0 "$rapid" tile -348.9 -43.8
expect "RA wraps" "$(grep -q '"rtid": 5321355,' <<<"$out"; echo $?)"
check tile-nside 0 "$rapid" tile --nside 1 --rtid 26
expect "nside 1 has 26 tiles" "$(grep -q '"dbid": 1,' <<<"$out"; echo $?)"
check tile-bad-pos 2 "$rapid" tile 400 100
expect "bad RA named" "$(grep -q "'400'" <<<"$err"; echo $?)"
check tile-bad-dec 2 "$rapid" tile 10 100
expect "bad Dec named" "$(grep -q "Dec '100'" <<<"$err"; echo $?)"
check tile-rtid0 2 "$rapid" tile --rtid 0
expect "rtid 0 named" "$(grep -q "rtid '0'" <<<"$err"; echo $?)"
check tile-rtid-big 2 "$rapid" tile --rtid 6291459
check tile-nan 2 "$rapid" tile abc 3
expect "non-number named" "$(grep -q "'abc'" <<<"$err"; echo $?)"
check tile-nan-dec 2 "$rapid" tile 3 nan
check tile-rtid-text 2 "$rapid" tile --rtid 12x
expect "bad rtid named" "$(grep -q "'12x'" <<<"$err"; echo $?)"
check tile-missing 2 "$rapid" tile 10
check tile-unknown-opt 2 "$rapid" tile --frob 1 2
check tile-opt-equals 0 "$rapid" tile --nside=1 --rtid=26
expect "--opt=value" "$(grep -q '"rtid": 26,' <<<"$out"; echo $?)"
check tile-opt-equals-bad 2 "$rapid" tile --nside=abc --rtid 2
expect "bad --nside=value named" "$(grep -q -- "--nside 'abc'" <<<"$err"; echo $?)"
check tile-opt-empty 2 "$rapid" tile --rtid= 
check tile-flag-value 2 "$rapid" tile --neighbors=yes --rtid 2
expect "flag with a value named" "$(grep -q -- '--neighbors takes no value' <<<"$err"; echo $?)"
check tile-unknown-eq 2 "$rapid" tile --frob=1 --rtid 2
expect "unknown --opt=value named without its value" "$(grep -q "unknown option '--frob'" <<<"$err"; echo $?)"
check tile-hex 2 "$rapid" tile 0x10 -44
expect "hex position refused, named" "$(grep -q "'0x10'" <<<"$err"; echo $?)"
check tile-hex-float 2 "$rapid" tile 0x1p4 -44
check tile-space 2 "$rapid" tile " 16" -44
check tile-infinity 2 "$rapid" tile infinity -44
check tile-exp-ok 0 "$rapid" tile 1.6e1 -4.4E+1
check tile-plus-ok 0 "$rapid" tile +16. -.44e2
check sim-hex-exptime 2 "$rapid" sim --out "$tmp/hex" --exptime 0x40
check ingest-hex-timeout 2 "$rapid" ingest --lock-timeout 0x10 x.fits
check tile-dashdash 0 "$rapid" tile -- 11.1 -43.8
check version-unknown 2 "$rapid" version --frob
check tile-help 0 "$rapid" tile --help
expect "tile help" "$(grep -q 'usage: rapid tile' <<<"$out"; echo $?)"
expect "data only on stdout" "$( [ -z "$err" ]; echo $?)"
check tile-export 0 "$rapid" tile --nside 4 --export-sqlite "$tmp/t4.db"
expect "export quiet in scripts" "$( [ -z "$err$out" ]; echo $?)"
check tile-export-exists 1 "$rapid" tile --nside 4 --export-sqlite "$tmp/t4.db"
expect "export refuses to overwrite" "$(grep -q "t4.db" <<<"$err"; echo $?)"
check tile-export-nodir 1 "$rapid" tile --nside 4 --export-sqlite "$tmp/no/t.db"
expect "export error names the target, not its temporary" "$(grep -q "$tmp/no/t.db: cannot create: No such file or directory" <<<"$err" && ! grep -q 'tmp[0-9]' <<<"$err"; echo $?)"
rm -rf "$tmp"

# --- rapid db, rapid ingest, rapid ingest-psf
tmp=${RAPID_TEST_TMP:-/tmp}/cli-db.$$; rm -rf "$tmp"; mkdir -p "$tmp"
card() { printf '%-80s' "$1"; }
num() { card "$(printf '%-8s= %20s' "$1" "$2")"; }
str() { card "$(printf '%-8s= %-20s' "$1" "'$2'")"; }
block() { # pad header cards on stdin to whole 2880-byte blocks
  local s; s=$(cat); printf '%s%*s' "$s" $(( (2880 - ${#s} % 2880) % 2880 )) ""
}
l2fits() { # l2fits PATH DATE-OBS SCA: a 2x2 L2 image with a TAN WCS
  { { card "SIMPLE  =                    T"; num BITPIX 8; num NAXIS 0
      card "EXTEND  =                    T"; card END; } | block
    { card "XTENSION= 'IMAGE   '"; num BITPIX -32; num NAXIS 2; num NAXIS1 2
      num NAXIS2 2; num PCOUNT 0; num GCOUNT 1; str EXTNAME SCI
      str DATE-OBS "$2"; num MJD-OBS 62021.0; str FILTER H158
      num EXPTIME 140.0; num SCA_NUM "$3"; num RA_TARG 11.1; num DEC_TARG -43.8
      num PA_OBSY 0.0; num PA_FPA 0.0; num ZPTMAG 26.3; num SKY_MEAN 40.0
      str CTYPE1 RA---TAN; str CTYPE2 DEC--TAN; num CRVAL1 11.1
      num CRVAL2 -43.8; num CRPIX1 1.5; num CRPIX2 1.5; num CD1_1 -0.0003
      num CD1_2 0.0; num CD2_1 0.0; num CD2_2 0.0003; card END; } | block
    head -c 2880 /dev/zero; } >"$1" # 2x2 zero floats, zero padding
}
db="sqlite:$tmp/rapid.db"
check db-help 0 "$rapid" db --help; expect "db help" "$(grep -q 'usage: rapid db init' <<<"$out"; echo $?)"
check db-noaction 2 "$rapid" db
check db-badaction 2 "$rapid" db frob; expect "bad action named" "$(grep -q "'frob'" <<<"$err"; echo $?)"
check db-init 0 "$rapid" db init --db "$db"
expect "init says created, on stderr" "$(grep -q 'schema version 3 created' <<<"$err" && [ -z "$out" ]; echo $?)"
check db-init-again 0 "$rapid" db init --db "$db"
expect "init again is a no-op" "$(grep -q 'up to date' <<<"$err" && [ -z "$out" ]; echo $?)"
check db-init-equals 0 "$rapid" db init --db="$db"
expect "--db=URL" "$(grep -q "$tmp/rapid.db: schema version 3, up to date" <<<"$err" && [ -z "$out" ]; echo $?)"
check db-unknown-opt 2 "$rapid" db init --frob
check db-missing-url 2 "$rapid" db init --db
check db-bad-url 2 "$rapid" db init --db mysql://localhost/x
expect "bad URL named" "$(grep -q "mysql://localhost/x': not a database URL" <<<"$err"; echo $?)"
check db-bad-url-eq 2 "$rapid" db status --db=sqlite:
check db-bad-url-env 2 env RAPID_DB=nonsense "$rapid" db status
expect "bad RAPID_DB named" "$(grep -q "RAPID_DB 'nonsense'" <<<"$err"; echo $?)"
check db-bad-url-secret 2 "$rapid" db status --db "pgsql://u:secret@h/x"
expect "a URL with a password is not echoed" "$(! grep -q secret <<<"$err"; echo $?)"
check db-url-query 2 "$rapid" db init --db "sqlite:$tmp/q.db?mode=ro"
expect "SQLite query refused, nothing made" "$(grep -q "query options" <<<"$err" && [ -z "$(ls "$tmp" | grep '^q\.db')" ]; echo $?)"
check db-url-relative-slashes 2 "$rapid" db init --db "sqlite://tmp/x.db"
expect "sqlite://relative refused" "$(grep -q 'sqlite:///tmp/x.db' <<<"$err"; echo $?)"
check db-url-port0 2 "$rapid" db status --db "postgresql://127.0.0.1:0/x"
check db-url-port-big 2 "$rapid" ingest --db "postgresql://u:secret@127.0.0.1:70000/x" x.fits
expect "bad port named, no password" "$(grep -q '1..65535' <<<"$err" && ! grep -q secret <<<"$err"; echo $?)"
check db-status 0 env RAPID_DB="$db" "$rapid" db status
expect "status from RAPID_DB" "$(grep -q '"schema_version": 3, .*"filters": 8' <<<"$out"; echo $?)"
check db-unreachable 1 "$rapid" db init --db postgresql://127.0.0.1:1/x
expect "unreachable: one line naming the server" "$( [ "$(wc -l <<<"$err")" = 1 ] && grep -q '127.0.0.1' <<<"$err"; echo $?)"
check ingest-help 0 "$rapid" ingest --help
check ingest-psf-help 0 "$rapid" ingest-psf --help
check ingest-noargs 2 "$rapid" ingest --db "$db"
check ingest-badopt 2 "$rapid" ingest --frob x
check ingest-badbatch 2 "$rapid" ingest --batch 0 x
check ingest-badbatch-eq 2 "$rapid" ingest --batch=x y
expect "bad --batch=x named" "$(grep -q -- "--batch 'x'" <<<"$err"; echo $?)"
check ingest-bad-url 2 "$rapid" ingest --db=nonsense x
check ingest-psf-bad-url 2 "$rapid" ingest-psf --db nonsense x
check ingest-psf-badopt 2 "$rapid" ingest-psf --frob x
check ingest-missing-value 2 "$rapid" ingest x --db
for c in db diff extract ingest ingest-psf sim coadd tile version; do
  check "$c-help-exit-codes" 0 "$rapid" $c --help
  expect "$c --help states the exit codes" "$(grep -q '^Exit status: 0 ' <<<"$out" && grep -q '2 bad usage' <<<"$out"; echo $?)"
done

l2fits "$tmp/a.fits" 2028-09-07T00:00:00.000 1
l2fits "$tmp/b.fits" 2028-09-07T00:00:00.000 2
printf 'not FITS\n' >"$tmp/bad.fits"
check ingest-unreachable 1 "$rapid" ingest --db postgresql://127.0.0.1:1/x "$tmp/a.fits"
expect "ingest unreachable: one line" "$( [ "$(wc -l <<<"$err")" = 1 ] && grep -q 'postgresql://127.0.0.1:1/x' <<<"$err"; echo $?)"
check ingest-nodb 1 "$rapid" ingest --db "sqlite:$tmp/none.db" "$tmp/a.fits"
expect "no database: says how to make one" "$(grep -q 'rapid db init' <<<"$err"; echo $?)"
check ingest-files 0 "$rapid" ingest --db "$db" "$tmp/a.fits" "$tmp/b.fits"
expect "ingest summary on stderr" "$(grep -qx 'rapid ingest: 2 files: 2 L2 images (2 added, 0 new versions, 0 unchanged, 0 failed), 0 passed over' <<<"$err"; echo $?)"
expect "ingest: nothing but the summary" "$( [ -z "$out" ] && [ "$(wc -l <<<"$err")" = 1 ]; echo $?)"
check ingest-again 1 "$rapid" ingest --db "$db" --verbose "$tmp"
expect "again: unchanged, bad one named" "$(grep -q '2 unchanged, 1 failed' <<<"$err" && grep -q "bad.fits: not a FITS file" <<<"$err"; echo $?)"
expect "verbose lines" "$(grep -q '^unchanged 1 1 .*/a.fits$' <<<"$out"; echo $?)"
rm "$tmp/bad.fits"
check ingest-equals 0 "$rapid" ingest --db="$db" --batch=1 --verbose "$tmp"
expect "ingest --opt=value" "$(grep -q '2 unchanged, 0 failed' <<<"$err" && grep -q '^unchanged 2 1 .*/b.fits$' <<<"$out"; echo $?)"
# a FITS file of headers only (no data in any HDU): passed over with a
# warning, named or found in a directory, and the run succeeds
hdronly() { { card "SIMPLE  =                    T"; num BITPIX 8; num NAXIS 0
              str DATE-OBS 2028-09-07T00:00:00.000; card END; } | block >"$1"; }
mkdir "$tmp/h"; hdronly "$tmp/h/empty.fits"; cp "$tmp/a.fits" "$tmp/h/"
check ingest-header-only-named 0 "$rapid" ingest --db "$db" "$tmp/h/empty.fits"
expect "header-only named: warned, skipped" "$(grep -q "warning: .*empty.fits: no data in any HDU" <<<"$err" && grep -q '0 failed), 1 passed over (not L2 images)' <<<"$err"; echo $?)"
check ingest-header-only-dir 0 "$rapid" ingest --db "$db" "$tmp/h"
expect "header-only in a directory: warned, skipped" "$(grep -q "warning: .*empty.fits: no data in any HDU" <<<"$err" && grep -q '1 unchanged, 0 failed), 1 passed over' <<<"$err"; echo $?)"
check ingest-psf-header-only 0 "$rapid" ingest-psf --db "$db" "$tmp/h/empty.fits"
expect "header-only PSF: warned" "$(grep -q "warning: .*empty.fits: no data in any HDU" <<<"$err"; echo $?)"
rm -rf "$tmp/h"
# another connection holds a write transaction: the ingest gives up after
# the lock timeout, says so, and says what it committed
{ echo 'BEGIN IMMEDIATE;'; echo "SELECT 'held';"; sleep 4; echo 'COMMIT;'; } |
  sqlite3 "$tmp/rapid.db" >"$tmp/held" 2>&1 & holder=$!
for i in $(seq 100); do grep -q held "$tmp/held" && break; sleep 0.05; done
check ingest-locked 1 "$rapid" ingest --db "$db" --lock-timeout 0.5 "$tmp/a.fits"
expect "lock timeout says why" "$(grep -q 'lock timeout (0.5 s) ran out; committed before the failure: 0 of 1 files' <<<"$err"; echo $?)"
check db-init-locked 1 "$rapid" db init --db "$db" --lock-timeout=0.2
expect "db init: lock timeout" "$(grep -q 'lock timeout (0.2 s) ran out' <<<"$err"; echo $?)"
kill $holder 2>/dev/null; wait $holder 2>/dev/null
check ingest-bad-timeout 2 "$rapid" ingest --db "$db" --lock-timeout 0 "$tmp/a.fits"
check db-bad-timeout 2 "$rapid" db status --db "$db" --lock-timeout=x
check ingest-psf-of-images 0 "$rapid" ingest-psf --db "$db" "$tmp"
expect "images passed over by ingest-psf" "$(grep -qx 'rapid ingest-psf: 2 files: 0 PSFs (0 added, 0 new versions, 0 unchanged, 0 failed), 2 passed over (not PSFs)' <<<"$err" && [ -z "$out" ]; echo $?)"
rm -rf "$tmp"

# --- rapid db status on a database the user may only read: it works and
# creates no file (as root, run as nobody: modes do not stop root)
ro=$(mktemp -d /tmp/rapid-ro.XXXXXX); chmod 755 "$ro"
as_reader() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi; }
"$rapid" db init --db "sqlite:$ro/ops.db" 2>/dev/null >/dev/null
chmod 444 "$ro/ops.db"; chmod 1777 "$ro"
check db-status-others 0 as_reader "$rapid" db status --db "sqlite:$ro/ops.db"
expect "status of another's database" "$(grep -q '"filters": 8' <<<"$out"; echo $?)"
expect "status creates no file" "$( [ "$(ls -A "$ro")" = ops.db ]; echo $?)"
chmod 555 "$ro"
check db-status-readonly-dir 0 as_reader "$rapid" db status --db "sqlite:$ro/ops.db"
expect "status in a read-only directory" "$(grep -q '"filters": 8' <<<"$out" && [ "$(ls -A "$ro")" = ops.db ]; echo $?)"
chmod 755 "$ro"; rm -rf "$ro"

# --- SQLite failures say why, naming the file or directory at fault
sq=$(mktemp -d /tmp/rapid-sq.XXXXXX); chmod 755 "$sq"
"$rapid" db init --db "sqlite:$sq/ro/w.db" 2>/dev/null >/dev/null
chmod 666 "$sq/ro/w.db"; chmod 555 "$sq/ro"; chmod 777 "$sq"
check db-rw-in-ro-dir 1 as_reader "$rapid" db init --db "sqlite:$sq/ro/w.db"
expect "writable database in a read-only directory: says so" "$(grep -q "directory $sq/ro is read-only" <<<"$err" && grep -q 'journal' <<<"$err"; echo $?)"
check db-new-in-ro-dir 1 as_reader "$rapid" db init --db "sqlite:$sq/ro/new.db"
expect "new database in a read-only directory: Permission denied" "$(grep -q "cannot create $sq/ro/new.db: Permission denied" <<<"$err"; echo $?)"
check db-subdir-in-ro-dir 1 as_reader "$rapid" db init --db "sqlite:$sq/ro/sub/new.db"
expect "directory that cannot be made named" "$(grep -q "cannot create its directory $sq/ro/sub: Permission denied" <<<"$err"; echo $?)"
check db-init-on-dir 1 "$rapid" db init --db "sqlite:$sq"
expect "init on a directory: says so" "$(grep -q "$sq is a directory" <<<"$err"; echo $?)"
check db-status-on-dir 1 "$rapid" db status --db "sqlite:$sq"
expect "status on a directory: says so" "$(grep -q "$sq is a directory" <<<"$err"; echo $?)"
chmod 755 "$sq/ro"; rm -rf "$sq"

# --- rapid sim
tmp=${RAPID_TEST_TMP:-/tmp}/cli-sim.$$; rm -rf "$tmp"; mkdir -p "$tmp"
small=(--size 128 --scas 1 --epochs 2)
check sim-help 0 "$rapid" sim --help
expect "sim help" "$(grep -q 'usage: rapid sim --out DIR' <<<"$out"; echo $?)"
check sim-run 0 "$rapid" sim --out "$tmp/a" "${small[@]}" --seed 3
expect "sim: one JSON line" "$(grep -Eq '^\{"out": ".*/a", "images": 2\}$' <<<"$out"; echo $?)"
expect "sim quiet in scripts" "$( [ -z "$err" ]; echo $?)"
expect "sim: two L2 images" "$( [ "$(ls "$tmp/a" | grep -Ec '^Roman_TDS_simple_model_H158_[0-9]+_1\.fits$')" = 2 ]; echo $?)"
expect "sim: PSF file" "$( [ -s "$tmp/a/psf/Roman_WFI_PSF_H158_1.fits" ]; echo $?)"
expect "sim: truth tables" "$( [ -s "$tmp/a/truth/static.fits" ] && [ -s "$tmp/a/truth/transients.fits" ] && [ -s "$tmp/a/truth/pointings.fits" ]; echo $?)"
expect "sim: nothing half-written" "$( [ -z "$(find "$tmp/a" -name '*.tmp')" ]; echo $?)"
# a PSF without FILTER: that file's error, the good PSF goes in, exit 1
sed 's/FILTER  =/XFILTER =/g' "$tmp/a/psf/Roman_WFI_PSF_H158_1.fits" >"$tmp/nf.fits"
"$rapid" db init --db "sqlite:$tmp/r.db" >/dev/null 2>&1
check ingest-psf-nofilter 1 "$rapid" ingest-psf --db "sqlite:$tmp/r.db" "$tmp/nf.fits" "$tmp/a/psf"
expect "PSF without FILTER named" "$(grep -q 'nf.fits: missing header keyword FILTER' <<<"$err"; echo $?)"
expect "good PSF of the run kept" "$(grep -q '2 files: 2 PSFs (1 added, .* 1 failed), 0 passed over' <<<"$err"; echo $?)"
# an L2 image that lost CRVAL1: refused, naming it, nothing stored
f=$(ls "$tmp"/a/Roman_TDS_simple_model_H158_*_1.fits | head -1)
sed 's/CRVAL1  =/XRVAL1  =/' "$f" >"$tmp/nocrval.fits"
check ingest-no-crval 1 "$rapid" ingest --db "sqlite:$tmp/r.db" "$tmp/nocrval.fits"
expect "L2 without CRVAL1 named" "$(grep -q 'nocrval.fits: .*missing CRVAL1' <<<"$err" && grep -q ': 1 file: 1 L2 image (0 added, 0 new versions, 0 unchanged, 1 failed), 0 passed over' <<<"$err"; echo $?)"
check sim-gzip 0 "$rapid" sim --out "$tmp/z" "${small[@]}" --gzip --filters F062 --start "2028-10-01 12:00:00"
expect "sim --gzip names" "$( [ "$(ls "$tmp/z" | grep -Ec '^Roman_TDS_simple_model_R062_[0-9]+_1\.fits\.gz$')" = 2 ]; echo $?)"
expect "sim --gzip is gzip" "$(ls "$tmp"/z/*.fits.gz | head -1 | xargs -I{} sh -c 'head -c 2 {} | od -An -tx1' | grep -q '1f 8b'; echo $?)"
check sim-radec 0 "$rapid" sim --out "$tmp/r" "${small[@]}" --ra 150.1 --dec 2.2 --exptime 60 --cadence 3
check sim-no-sn 0 "$rapid" sim --out "$tmp/n" "${small[@]}" --sn-rate=0
check sim-dry-run 0 "$rapid" sim --out "$tmp/d" "${small[@]}" --dry-run
expect "sim --dry-run: what it would write, and nothing written" "$(grep -Eq '^\{"out": ".*/d", "images": 2, "psf_files": 1, "bytes_per_image": 218880, "bytes": [0-9]+\}$' <<<"$out" && [ ! -e "$tmp/d" ]; echo $?)"
check sim-without 0 "$rapid" sim --out "$tmp/w" "${small[@]}" --without=supernovae,variables,cosmic-rays,hot-pixels,bright-stars
expect "sim --without: no cosmic rays, no hot pixels" "$(grep -a -q 'NCOSMIC =                    0' "$tmp/w/Roman_TDS_simple_model_H158_1_1.fits" && grep -a -q 'NHOTPIX =                    0' "$tmp/w/Roman_TDS_simple_model_H158_1_1.fits"; echo $?)"
check sim-without-bad 2 "$rapid" sim --out "$tmp/x" --without planets
expect "sim --without names the unknown part" "$(grep -q "'planets'" <<<"$err"; echo $?)"
check sim-bad-sn-rate 2 "$rapid" sim --out "$tmp/x" --sn-rate -1
expect "bad supernova rate named" "$(grep -q "'-1'" <<<"$err"; echo $?)"
check sim-allow-large 0 "$rapid" sim --out "$tmp/l" "${small[@]}" --allow-large
check sim-psf-vary 0 "$rapid" sim --out "$tmp/pv" "${small[@]}" --psf-vary 30
expect "sim --psf-vary: a PSF file per visit" "$( [ "$(ls "$tmp/pv/psf" | grep -Ec '^Roman_WFI_PSF_H158_1_visit[0-9]+\.fits$')" = 2 ] && [ ! -e "$tmp/pv/psf/Roman_WFI_PSF_H158_1.fits" ]; echo $?)"
check sim-bad-psf-vary 2 "$rapid" sim --out "$tmp/x" --psf-vary -5
expect "bad per-visit blur named" "$(grep -q "'-5'" <<<"$err"; echo $?)"
check sim-bad-filter 2 "$rapid" sim --out "$tmp/x" --filters F158,F999
expect "bad filter named" "$(grep -q "'F999'" <<<"$err"; echo $?)"
check sim-bad-size 2 "$rapid" sim --out "$tmp/x" --size 32
expect "bad size named" "$(grep -q "'32'" <<<"$err"; echo $?)"
check sim-scas0 2 "$rapid" sim --out "$tmp/x" --scas 0
check sim-scas19 2 "$rapid" sim --out "$tmp/x" --scas 19
expect "bad scas named" "$(grep -q "'19'" <<<"$err"; echo $?)"
check sim-bad-start 2 "$rapid" sim --out "$tmp/x" --start "2028-02-30 00:00:00"
expect "bad start named" "$(grep -q "'2028-02-30 00:00:00'" <<<"$err"; echo $?)"
check sim-bad-start2 2 "$rapid" sim --out "$tmp/x" --start yesterday
check sim-tiles-radec 2 "$rapid" sim --out "$tmp/x" --tiles 2 --ra 10 --dec -40
expect "tiles and ra named" "$(grep -q -- '--tiles' <<<"$err"; echo $?)"
check sim-ra-alone 2 "$rapid" sim --out "$tmp/x" --ra 10
check sim-no-out 2 "$rapid" sim --size 128
expect "missing --out named" "$(grep -q -- '--out' <<<"$err"; echo $?)"
check sim-bad-seed 2 "$rapid" sim --out "$tmp/x" --seed -1
check sim-unknown-opt 2 "$rapid" sim --out "$tmp/x" --frob 1
check sim-missing-value 2 "$rapid" sim --out
expect "bad usage writes nothing" "$( [ ! -e "$tmp/x" ]; echo $?)"
check sim-flag-value 2 "$rapid" sim --out "$tmp/x" --gzip=1
check sim-bad-eq 2 "$rapid" sim --out="$tmp/x" --seed=abc
expect "bad --seed=abc named" "$(grep -q "'abc'" <<<"$err"; echo $?)"
# a directory that already holds a simulation: refused without --force
before=$(ls -R "$tmp/a" | md5sum)
check sim-not-empty 1 "$rapid" sim --out "$tmp/a" "${small[@]}" --seed 4
expect "not empty: says so, names --force" "$(grep -q "$tmp/a: the directory is not empty" <<<"$err" && grep -q -- '--force' <<<"$err"; echo $?)"
expect "not empty: nothing changed" "$( [ "$(ls -R "$tmp/a" | md5sum)" = "$before" ]; echo $?)"
# --force: the earlier simulation's files (and an interrupted write's
# temporaries) go, anything else stays, and no old image is left
echo keep >"$tmp/a/notes.txt"; echo keep >"$tmp/a/psf/mine.fits"
touch "$tmp/a/.Roman_TDS_simple_model_H158_3_1.fits.123.55d0.tmp"
check sim-force 0 "$rapid" sim --out="$tmp/a" --force --size=128 --scas=1 --epochs=1 --filters=F062 --seed=4
expect "--force: one JSON line" "$(grep -Eq '^\{"out": ".*/a", "images": 1\}$' <<<"$out"; echo $?)"
expect "--force: no earlier image left" "$( [ -z "$(ls -A "$tmp/a" | grep H158)" ] && [ "$(ls "$tmp/a" | grep -c '^Roman_TDS_simple_model_R062_.*\.fits$')" = 1 ]; echo $?)"
expect "--force: no earlier PSF left" "$( [ "$(ls "$tmp/a/psf")" = "$(printf 'Roman_WFI_PSF_R062_1.fits\nmine.fits')" ]; echo $?)"
expect "--force: other files kept and named" "$( [ -f "$tmp/a/notes.txt" ] && [ -f "$tmp/a/psf/mine.fits" ] && grep -q "warning: .*left alone" <<<"$err"; echo $?)"
expect "--force: new truth" "$( [ -s "$tmp/a/truth/pointings.fits" ]; echo $?)"
mkdir "$tmp/empty"
check sim-empty-dir 0 "$rapid" sim --out "$tmp/empty" "${small[@]}"
touch "$tmp/file"
check sim-unwritable 1 "$rapid" sim --out "$tmp/file/sub" "${small[@]}"
expect "unwritable --out named" "$(grep -q "$tmp/file" <<<"$err"; echo $?)"
rm -rf "$tmp"

# --- rapid coadd
tmp=${RAPID_TEST_TMP:-/tmp}/cli-coadd.$$; rm -rf "$tmp"; mkdir -p "$tmp"
check coadd-sim 0 "$rapid" sim --out "$tmp/s" --size 256 --scas 1 --epochs 4 --seed 9
rtid=$("$rapid" tile 9.6 -44.0 | sed 's/.*"rtid": \([0-9]*\).*/\1/')
check coadd 0 "$rapid" coadd --rtid "$rtid" --filter F158 --out "$tmp/ref" --size 400 "$tmp"/s/Roman_TDS_*.fits
expect "coadd prints refimmeta" "$(grep -q '"nframes": 4,' <<<"$out" && grep -q '"cov5percent"' <<<"$out"; echo $?)"
expect "coadd products" "$(for s in '' _cov _unc _psf _cat; do [ -f "$tmp/ref/rapid_ref_${rtid}_H158$s.fits" ] || exit 1; done; echo 0)"
expect "coadd quiet in scripts" "$( [ -z "$err" ]; echo $?)"
ls "$tmp"/s/Roman_TDS_*.fits > "$tmp/list"
check coadd-list 0 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/ref2" --size 400 --inputs "$tmp/list" --psfs "$tmp/s/psf" --threads 2
# the same files twice (a list and a glob, a symbolic link): refused as
# bad usage, naming both entries
check coadd-twice 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/reft" --size 400 --inputs "$tmp/list" "$tmp"/s/Roman_TDS_*.fits
expect "same file twice named" "$(grep -q "input 5 ($(ls "$tmp"/s/Roman_TDS_*.fits | head -1)) is the same file as input 1" <<<"$err"; echo $?)"
ln -sf "$(head -1 "$tmp/list")" "$tmp/link.fits"
check coadd-twice-link 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/reft" --size 400 "$tmp"/s/Roman_TDS_*.fits "$tmp/link.fits"
expect "symbolic link named" "$(grep -q "input 5 ($tmp/link.fits) is the same file as input 1" <<<"$err"; echo $?)"
# an input whose WCS puts it far away (Dec -44 made +44): used without it,
# with a warning naming it; with too few left, the message names it
LC_ALL=C sed 's/\(CRVAL2  = *\)-/\1 /' "$(head -1 "$tmp/list")" > "$tmp/badwcs.fits"
check coadd-skip 0 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/refs" --size 400 "$tmp"/s/Roman_TDS_*.fits "$tmp/badwcs.fits"
expect "skipped input: nframes 4" "$(grep -q '"nframes": 4,' <<<"$out"; echo $?)"
expect "skipped input warned" "$(grep -q "^rapid coadd: warning: $tmp/badwcs.fits: not used: .*tile centre" <<<"$err" && [ "$(wc -l <<<"$err")" = 1 ]; echo $?)"
check coadd-skip-toofew 33 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/refs2" --size 400 $(head -2 "$tmp/list") "$tmp/badwcs.fits"
expect "too few names the skipped" "$(grep -q "2 usable input images of 3 given.*not used: $tmp/badwcs.fits" <<<"$err"; echo $?)"
check coadd-empty-out 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "" "$tmp"/s/Roman_TDS_*.fits
check coadd-empty-out-eq 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out= "$tmp"/s/Roman_TDS_*.fits
check coadd-inputs-dir 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/x" --inputs "$tmp/s"
expect "--inputs DIR says so" "$(grep -q "is a directory" <<<"$err"; echo $?)"
check coadd-toofew 33 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/ref3" --size 400 $(head -2 "$tmp/list")
expect "too few says so" "$(grep -q 'at least 3' <<<"$err"; echo $?)"
expect "too few writes nothing" "$( [ ! -e "$tmp/ref3" ]; echo $?)"
check coadd-wrong-filter 1 "$rapid" coadd --rtid "$rtid" --filter F184 --out "$tmp/ref4" --size 400 "$tmp"/s/Roman_TDS_*.fits
expect "wrong filter names the file" "$(grep -q 'Roman_TDS_simple_model_H158' <<<"$err"; echo $?)"
echo "not FITS" > "$tmp/junk.fits"
check coadd-junk 1 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/ref5" --size 400 "$tmp/junk.fits" "$tmp"/s/Roman_TDS_*.fits
expect "junk named" "$(grep -q 'junk.fits' <<<"$err"; echo $?)"
check coadd-no-rtid 2 "$rapid" coadd --filter H158 --out "$tmp/x" "$tmp/junk.fits"
check coadd-bad-filter 2 "$rapid" coadd --rtid "$rtid" --filter X99 --out "$tmp/x" "$tmp/junk.fits"
expect "bad filter named" "$(grep -q "'X99'" <<<"$err"; echo $?)"
check coadd-no-inputs 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/x"
ls "$tmp"/s/psf/*.fits | head -1 > "$tmp/psflist"
check coadd-psf-count 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/x" --psfs "$tmp/psflist" "$tmp"/s/Roman_TDS_*.fits
expect "psf list count named" "$(grep -q 'psflist lists 1 PSFs for 4 inputs' <<<"$err"; echo $?)"
check coadd-psf-missing 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/x" --psfs "$tmp/nope" "$tmp"/s/Roman_TDS_*.fits
expect "missing psf path named" "$(grep -q "$tmp/nope" <<<"$err"; echo $?)"
# a product that cannot be written (a directory where the catalog goes):
# exit 1, the message names it, and none of the other four is left
mkdir -p "$tmp/ref6/rapid_ref_${rtid}_H158_cat.fits"
check coadd-write-fails 1 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/ref6" --size 400 "$tmp"/s/Roman_TDS_*.fits
expect "unwritable product named" "$(grep -q "ref6/rapid_ref_${rtid}_H158_cat.fits" <<<"$err"; echo $?)"
expect "no partial reference" "$( [ "$(ls -A "$tmp/ref6")" = "rapid_ref_${rtid}_H158_cat.fits" ]; echo $?)"
check coadd-equals 0 "$rapid" coadd --rtid="$rtid" --filter=F158 --out="$tmp/ref7" --size=400 --threads=2 "$tmp"/s/Roman_TDS_*.fits
expect "coadd --opt=value" "$(grep -q '"nframes": 4,' <<<"$out" && [ -z "$err" ]; echo $?)"
check coadd-bad-size 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/x" --size=abc "$tmp/junk.fits"
expect "bad --size named" "$(grep -q -- "--size 'abc'" <<<"$err"; echo $?)"
check coadd-unknown-opt 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/x" --frob "$tmp/junk.fits"
check coadd-no-list 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/x" --inputs="$tmp/nolist"
expect "missing list named" "$(grep -q "$tmp/nolist" <<<"$err"; echo $?)"
check coadd-no-psf-list 2 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/x" --psfs "$tmp/s/psf/nope" "$tmp"/s/Roman_TDS_*.fits
# messages name the filter as the user did
check coadd-spelling-toofew 33 "$rapid" coadd --rtid "$rtid" --filter F158 --out "$tmp/ref3" --size 400 $(head -2 "$tmp/list")
expect "too few: the filter as given" "$(grep -q ", F158: 2 usable" <<<"$err"; echo $?)"
check coadd-spelling-other 1 "$rapid" coadd --rtid "$rtid" --filter f062 --out "$tmp/ref4" --size 400 "$tmp"/s/Roman_TDS_*.fits
expect "other filter: the filter as given" "$(grep -q "reference image is for f062" <<<"$err" && grep -q 'Roman_TDS_simple_model_H158' <<<"$err"; echo $?)"
check coadd-help 0 "$rapid" coadd --help
# a grid that cannot fit in memory is refused before anything is allocated
check coadd-too-large 1 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/huge" --size 100000 "$tmp"/s/Roman_TDS_*.fits
expect "too large: both figures" "$(grep -Eq 'a 100000 x 100000 reference image \(1 thread\) needs about 223\.5 GiB of memory, more than the [0-9.]+ [GM]iB available \((MemAvailable in /proc/meminfo|cgroup limit .*)\); --allow-large runs it anyway' <<<"$err"; echo $?)"
expect "too large: nothing written" "$( [ ! -e "$tmp/huge" ]; echo $?)"
check coadd-allow-large 0 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/refl" --size 400 --allow-large "$tmp"/s/Roman_TDS_*.fits
# interrupted while it works or writes (runs alternate between two grid
# sizes): the directory holds the earlier five products or the new five,
# and after SIGTERM/SIGINT no temporaries; after SIGKILL the next run
# removes them
naxis1() { head -c 8640 "$1" | fold -w 80 | sed -n 's/^NAXIS1  = *\([0-9]*\).*/\1/p' | tail -1; }
whole_set() {
  local d=$1 p=$tmp/refk/rapid_ref_${rtid}_H158 a
  [ "$(ls -A "$d" | wc -l)" = 5 ] || return 1
  a=$(naxis1 "$p.fits"); [ -n "$a" ] || return 1
  [ "$(naxis1 "$p"_cov.fits)" = "$a" ] && [ "$(naxis1 "$p"_unc.fits)" = "$a" ] &&
    [ -s "$p"_psf.fits ] && [ -s "$p"_cat.fits ]
}
check coadd-kill-first 0 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/refk" --size 1400 "$tmp"/s/Roman_TDS_*.fits
k=0
set -m # background jobs of a script ignore SIGINT without job control
for sig in TERM INT KILL; do
  killed=0
  # "-": while it works, before it writes; then at delays after the hidden
  # directory of the new set appears (the write takes about 50 ms)
  for d in - 0 0.004 0.008 0.015 0.025 0.04; do
    k=$((k+1)); size=$((1400 + 100 * (k % 2)))
    "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/refk" --size $size "$tmp"/s/Roman_TDS_*.fits >/dev/null 2>&1 &
    pid=$!
    if [ "$d" = - ]; then
      sleep 0.05
    else
      while kill -0 $pid 2>/dev/null && ! compgen -G "$tmp/.refk.*" >/dev/null; do sleep 0.002; done
      sleep $d
    fi
    kill -$sig $pid 2>/dev/null; wait $pid 2>/dev/null
    [ $? = $((128 + $(kill -l $sig))) ] && killed=$((killed+1))
    expect "coadd SIG$sig at $d: one whole set" "$(whole_set "$tmp/refk"; echo $?)"
    if [ $sig != KILL ]; then
      expect "coadd SIG$sig at $d: no temporaries" "$( [ -z "$(ls -A "$tmp" | grep '^\.refk\.')" ]; echo $?)"
    fi
  done
  expect "coadd: SIG$sig ended some runs ($killed of 7)" "$( [ $killed -ge 4 ]; echo $?)"
done
set +m
check coadd-after-kill 0 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/refk" --size 1400 "$tmp"/s/Roman_TDS_*.fits
expect "coadd after SIGKILL: temporaries removed" "$( [ -z "$(ls -A "$tmp" | grep '^\.refk\.')" ] && whole_set "$tmp/refk"; echo $?)"
# a directory holding anything else is not replaced
touch "$tmp/refk/notes.txt"
check coadd-foreign-file 1 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/refk" --size 400 "$tmp"/s/Roman_TDS_*.fits
expect "foreign file named" "$(grep -q 'refk/notes.txt: not one of the products' <<<"$err"; echo $?)"
rm -rf "$tmp"

# --- rapid diff: a science image against a reference of four earlier visits
# (768^2: the smallest simulated pair with enough isolated S/N >= 20 stars,
# about 57, for the kernel fit (sfft) of a quadratic kernel, which needs 30
# stamps; at 256^2 there are 4 and at 512^2 23)
tmp=${RAPID_TEST_TMP:-/tmp}/cli-diff.$$; rm -rf "$tmp"; mkdir -p "$tmp"
check diff-sim 0 "$rapid" sim --out "$tmp/s" --size 768 --scas 1 --epochs 5 --seed 9
rtid=$("$rapid" tile 9.6 -44.0 | sed 's/.*"rtid": \([0-9]*\).*/\1/')
check diff-coadd 0 "$rapid" coadd --rtid "$rtid" --filter H158 --out "$tmp/ref" --size 1152 "$tmp"/s/Roman_TDS_simple_model_H158_[1-4]_1.fits
sci=$tmp/s/Roman_TDS_simple_model_H158_5_1.fits
ref=$tmp/ref/rapid_ref_${rtid}_H158.fits
b=Roman_TDS_simple_model_H158_5_1
sfft_products="sfft_diff sfft_cconv sfft_unc sfft_psf"
all_products="zogy_diff zogy_unc zogy_scorr zogy_psf naive_diff naive_unc $sfft_products refsci refsci_cov refsci_unc refsci_psf"
have_fitsverify=$(command -v fitsverify >/dev/null && echo 1 || echo 0)
have_astropy=$(/usr/bin/python3 -c 'import astropy, numpy' 2>/dev/null && echo 1 || echo 0)
# every product named exists, fitsverify finds nothing (warnings
# included), and astropy opens it and its WCS without a warning
products_ok() { # products_ok DIR SUFFIX...
  local d=$1 p; shift
  for p in "$@"; do
    [ -f "$d/${b}_$p.fits" ] || { echo "missing $d/${b}_$p.fits"; return 1; }
    if [ "$have_fitsverify" = 1 ]; then fitsverify -q -e "$d/${b}_$p.fits" >/dev/null 2>&1 || { echo "fitsverify: $p"; return 1; }; fi
  done
  [ "$have_astropy" = 1 ] || return 0
  /usr/bin/python3 - "$d" "$b" "$@" <<'PY'
import sys, warnings
warnings.simplefilter("error")
from astropy.io import fits
from astropy.wcs import WCS
d, b = sys.argv[1], sys.argv[2]
for p in sys.argv[3:]:
    with fits.open("%s/%s_%s.fits" % (d, b, p)) as h:
        h.verify("exception")
        hd = h[-1].header
        assert "RAPIDVER" in hd and "SCIFILE" in hd and "MATCHSCL" in hd and "MATCHFRM" in hd, p
        if not p.endswith("psf"):
            w = WCS(hd)
            assert w.sip is not None, p + ": no SIP"
            want = "" if p in ("zogy_scorr", "refsci_cov") else "DN/s"
            assert hd["BUNIT"] == want, p + ": BUNIT " + hd["BUNIT"]
        if p.startswith("zogy"):
            assert hd["DIFFMETH"] == "ZOGY" and hd["SIGMA_N"] > 0 and hd["ZOGY_FD"] > 0, p
        if p.startswith("sfft"):
            assert hd["DIFFMETH"] == "SFFT" and hd["SFFTBAS"] == "delta", p
            assert hd["SFFTNST"] >= 30 and hd["SFFTNPIX"] > hd["SFFTNUNK"] > 0, p
            assert hd["SFFTCHI2"] > 0 and hd["SFFTCOND"] >= 1 and hd["SIGMA_N"] > 0, p
            assert abs(hd["SFFTKSUM"] - hd["MATCHSCL"]) < 0.1 * hd["MATCHSCL"], p
            for k in ("SFFTORD", "SFFTHW", "SFFTNREJ"):
                assert k in hd, p + ": " + k
        if p == "sfft_psf":
            assert abs(h[0].data.sum() - 1) < 1e-4, p
PY
}
json_has() { # json_has PYTHON-EXPRESSION (of d, the JSON object on $out)
  python3 -c 'import json, sys; d = json.loads(sys.stdin.read()); sys.exit(0 if ('"$1"') else 1)' <<<"$out"
}
check diff-help 0 "$rapid" diff --help
expect "diff help" "$(grep -q 'usage: rapid diff --sci' <<<"$out" && grep -q 'RAPID_WORK' <<<"$out" && grep -q -- '--kernel-half-width' <<<"$out" && grep -q 'zogy,naive,sfft' <<<"$out"; echo $?)"
check diff 0 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/d"
expect "diff: one JSON object with every key" "$(json_has '
  set(d) >= {"products", "match", "methods", "stages"} and
  set(d["products"]) == {"zogy", "naive", "sfft", "refsci"} and
  set(d["products"]["zogy"]) == {"diff", "unc", "psf", "scorr"} and
  set(d["products"]["naive"]) == {"diff", "unc"} and
  set(d["products"]["sfft"]) == {"diff", "cconv", "unc", "psf"} and
  set(d["products"]["refsci"]) == {"image", "cov", "unc", "psf"} and
  all(isinstance(v, str) for g in d["products"].values() for v in g.values()) and
  set(d["match"]) >= {"scale", "nstars", "dx_median", "dy_median", "dx_rms", "dy_rms", "bkg_sci", "bkg_ref", "from"} and
  d["match"]["from"] in ("stars", "zero points") and d["match"]["scale"] > 0 and
  d["methods"]["zogy"]["status"] == "ok" and d["methods"]["naive"]["status"] == "ok" and
  d["methods"]["sfft"]["status"] == "ok" and set(d["stages"]) >= {"zogy", "naive", "sfft"} and
  set(d["methods"]["sfft"]) >= {"status", "seconds", "cpu_seconds", "basis", "order", "half_width", "nstamps",
    "nrejected", "npix", "nunknowns", "chi2r", "cond", "ksum", "sec_fit", "sec_conv"} and
  d["methods"]["sfft"]["order"] == 2 and d["methods"]["sfft"]["half_width"] == 9 and
  d["methods"]["zogy"]["seconds"] >= 0 and d["methods"]["zogy"]["sigma_n"] > 0 and
  d["products"]["zogy"]["diff"] == "'"$tmp/d/${b}_zogy_diff.fits"'"'; echo $?)"
# the kernel fit's statistics: present, and what the fit of this pair
# gives (chi^2 near 1, a finite condition number below the limit)
expect "diff: the kernel fit's statistics in the JSON" "$(json_has '
  (lambda m: m["basis"] == "delta" and m["order"] == 2 and m["bg_order"] == 2 and
   m["nstamps"] >= 30 and m["ncandidates"] >= m["nstamps"] + m["nrejected"] and
   m["npix"] > m["nunknowns"] == 6 * 19 * 19 + 6 and
   isinstance(m["chi2r"], float) and 0.5 < m["chi2r"] < 2 and
   isinstance(m["cond"], float) and 1 <= m["cond"] < 1e12 and
   m["eiv_steps"] in range(0, 4) and
   0 <= m["kerr_centre"] <= m["kerr_edge"] < 1 and
   abs(m["ksum"] - d["match"]["scale"]) < 0.1 * d["match"]["scale"])(d["methods"]["sfft"])'; echo $?)"
expect "diff: no bare NaN in the JSON" "$(! grep -qiE '\bnan\b|\binf' <<<"$out"; echo $?)"
expect "diff quiet in scripts" "$( [ -z "$err" ]; echo $?)"
expect "diff: the fourteen products, verified" "$(products_ok "$tmp/d" $all_products && [ "$(ls -A "$tmp/d" | wc -l)" = 14 ]; echo $?)"
check diff-sfft 0 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/sf" --method sfft --order 1 --kernel-half-width 7 --threads 2
expect "diff --method sfft: its options used, only its products" "$(json_has 'set(d["methods"]) == {"sfft"} and set(d["products"]) == {"sfft", "refsci"} and d["methods"]["sfft"]["order"] == 1 and d["methods"]["sfft"]["half_width"] == 7 and d["methods"]["sfft"]["nunknowns"] == 3 * 15 * 15 + 6 and d["products"]["sfft"]["cconv"] == "'"$tmp/sf/${b}_sfft_cconv.fits"'"' && products_ok "$tmp/sf" $sfft_products refsci refsci_cov refsci_unc refsci_psf && [ "$(ls -A "$tmp/sf" | wc -l)" = 8 ]; echo $?)"
# NaN where the other methods' differences are NaN (no reference coverage)
if [ "$have_astropy" = 1 ]; then
expect "diff: sfft NaN where zogy's is" "$(/usr/bin/python3 -c '
import sys, numpy as np
from astropy.io import fits
d, b = sys.argv[1], sys.argv[2]
z = np.isnan(fits.getdata("%s/%s_zogy_diff.fits" % (d, b)))
ok = True
for p in ("diff", "cconv", "unc"):
    s = np.isnan(fits.getdata("%s/%s_sfft_%s.fits" % (d, b, p)))
    ok = ok and (s == z).all()
sys.exit(0 if ok else 1)' "$tmp/d" "$b"; echo $?)"
fi
check diff-all 0 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/a" --method all --order 0
expect "diff --method all: three methods" "$(json_has 'set(d["methods"]) == {"zogy", "naive", "sfft"} and all(m["status"] == "ok" for m in d["methods"].values()) and d["methods"]["sfft"]["order"] == 0'; echo $?)"
# the kernel fit fails (a kernel of half-width 30, quadratic: 22,000
# unknowns, far more than the stamps of this pair can fit): exit 4, its
# status and message, the others' products written, no sfft product (the
# earlier set's go)
check diff-sfft-fails 4 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/a" --kernel-half-width 30
expect "sfft failed: status and message, no sfft products" "$(json_has 'd["methods"]["sfft"]["status"] == "failed" and "too few stamps" in d["methods"]["sfft"]["message"] and d["methods"]["zogy"]["status"] == "ok" and set(d["products"]) == {"zogy", "naive", "refsci"}' && grep -q 'sfft failed: .*too few stamps' <<<"$err" && [ -z "$(ls "$tmp/a" | grep sfft)" ]; echo $?)"
expect "sfft failed: the other products intact" "$(products_ok "$tmp/a" zogy_diff zogy_unc zogy_scorr zogy_psf naive_diff naive_unc refsci refsci_cov refsci_unc refsci_psf && [ "$(ls -A "$tmp/a" | wc -l)" = 10 ]; echo $?)"
check diff-bad-order 2 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/x" --order 3
check diff-bad-half-width 2 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/x" --kernel-half-width 0
check diff-naive 0 "$rapid" diff --sci "$sci[SCI]" --ref "$ref" --out "$tmp/n" --method naive
expect "diff --method naive: no zogy key, no zogy product" "$(json_has '"zogy" not in d["products"] and "zogy" not in d["methods"] and "zogy" not in d["stages"] and d["methods"]["naive"]["status"] == "ok"' && [ -z "$(ls "$tmp/n" | grep zogy)" ] && products_ok "$tmp/n" naive_diff naive_unc refsci refsci_cov refsci_unc refsci_psf; echo $?)"
check diff-threads-wisdom 0 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/w" --method zogy --threads 2 --wisdom "$tmp/fftw.wisdom"
expect "diff --wisdom: saved" "$( [ -s "$tmp/fftw.wisdom" ] && json_has 'd["methods"]["zogy"]["status"] == "ok" and "naive" not in d["products"]'; echo $?)"
check diff-bad-method 2 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/x" --method zogy,frob
expect "unknown method named" "$(grep -q "unknown method 'frob'" <<<"$err" && [ ! -e "$tmp/x" ]; echo $?)"
check diff-no-out 2 "$rapid" diff --sci "$sci" --ref "$ref"
expect "missing --out said" "$(grep -q -- '--out' <<<"$err"; echo $?)"
check diff-no-sci 2 "$rapid" diff --ref "$ref" --out "$tmp/x"
check diff-no-ref 2 "$rapid" diff --sci "$sci" --out "$tmp/x"
check diff-bad-threads 2 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/x" --threads 0
check diff-operand 2 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/x" "$sci"
check diff-missing-ref 1 "$rapid" diff --sci "$sci" --ref "$tmp/none.fits" --out "$tmp/x"
expect "missing reference named, nothing written" "$(grep -q "$tmp/none.fits: no such file" <<<"$err" && [ -z "$out" ] && [ ! -e "$tmp/x" ]; echo $?)"
check diff-missing-hdu 1 "$rapid" diff --sci "$sci[NOPE]" --ref "$ref" --out "$tmp/x"
expect "missing science HDU named" "$(grep -q "$sci.*NOPE" <<<"$err"; echo $?)"
# ZOGY fails (a science PSF of zeros): exit 4, its status and message in
# the JSON, no ZOGY product (the earlier set's go), the naive ones written
{ { card "SIMPLE  =                    T"; num BITPIX -32; num NAXIS 2; num NAXIS1 15
    num NAXIS2 15; card END; } | block; head -c 2880 /dev/zero; } >"$tmp/zero_psf.fits"
check diff-zogy-fails 4 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/d" --sci-psf "$tmp/zero_psf.fits"
expect "ZOGY failed: status and message, no ZOGY products" "$(json_has 'd["methods"]["zogy"]["status"] == "failed" and "zero_psf.fits" in d["methods"]["zogy"]["message"] and d["methods"]["naive"]["status"] == "ok" and "zogy" not in d["products"] and set(d["products"]) == {"naive", "refsci"}' && [ -z "$(ls "$tmp/d" | grep zogy)" ]; echo $?)"
expect "ZOGY failed: said on stderr, naming the PSF" "$(grep -q 'zogy failed: .*zero_psf.fits' <<<"$err"; echo $?)"
expect "ZOGY failed: naive products intact" "$(products_ok "$tmp/d" naive_diff naive_unc refsci refsci_cov refsci_unc refsci_psf && [ "$(ls -A "$tmp/d" | wc -l)" = 6 ]; echo $?)"
before=$(ls -l --time-style=full-iso "$tmp/d" | md5sum)
check diff-zogy-only-fails 1 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/d" --method zogy --sci-psf "$tmp/zero_psf.fits"
expect "every method failed: the status in the JSON, nothing written" "$(json_has 'd["products"] == {} and d["methods"]["zogy"]["status"] == "failed"' && [ "$(ls -l --time-style=full-iso "$tmp/d" | md5sum)" = "$before" ]; echo $?)"
check diff-no-sci-psf 4 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/d" --sci-psf "$tmp/nope_psf.fits"
expect "missing science PSF named" "$(json_has '"nope_psf.fits" in d["methods"]["zogy"]["message"]'; echo $?)"
check diff-bad-cov 1 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/x" --ref-cov "$tmp/nope_cov.fits"
expect "a missing map given is named" "$(grep -q "nope_cov.fits" <<<"$err" && [ ! -e "$tmp/x" ]; echo $?)"
# a reference alone (no _cov, _unc, _psf beside it): warned, coverage 1
# and the reference's own noise; ZOGY fails for want of its PSF
mkdir "$tmp/lone"; cp "$ref" "$tmp/lone/"
check diff-lone-ref 4 "$rapid" diff --sci "$sci" --ref "$tmp/lone/rapid_ref_${rtid}_H158.fits" --out "$tmp/l"
expect "lone reference: the maps looked for are named" "$(grep -q "warning: no coverage map $tmp/lone/rapid_ref_${rtid}_H158_cov.fits" <<<"$err" && grep -q "warning: no uncertainty map $tmp/lone/rapid_ref_${rtid}_H158_unc.fits" <<<"$err"; echo $?)"
expect "lone reference: ZOGY failed naming the PSF, no refsci PSF" "$(json_has '"rapid_ref_'"$rtid"'_H158_psf.fits" in d["methods"]["zogy"]["message"] and d["products"]["refsci"]["psf"] is None and isinstance(d["products"]["refsci"]["cov"], str)' && [ "$(ls -A "$tmp/l" | wc -l)" = 5 ]; echo $?)"
# the products cannot be written: exit 1, named, nothing left
touch "$tmp/file"
check diff-unwritable 1 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/file/sub"
expect "unwritable --out named" "$(grep -q "$tmp/file/sub" <<<"$err" && [ -z "$out" ]; echo $?)"
mkdir "$tmp/f"; echo mine >"$tmp/f/notes.txt"
check diff-foreign-file 1 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/f"
expect "a foreign file is named and kept" "$(grep -q 'f/notes.txt: not one of the products' <<<"$err" && [ "$(ls -A "$tmp/f")" = notes.txt ]; echo $?)"
# interrupted while it writes: the earlier set of fourteen stays whole, and
# no temporaries are left
# the fourteen names, each a whole FITS file (a non-zero number of 2880-byte
# blocks)
whole_diff_set() {
  local p sz
  [ "$(ls -A "$1" | wc -l)" = 14 ] || return 1
  for p in $all_products; do
    sz=$(stat -c %s "$1/${b}_$p.fits" 2>/dev/null) || return 1
    [ "$sz" -gt 0 ] && [ $((sz % 2880)) = 0 ] || return 1
  done
}
check diff-before-kill 0 "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/k"
set -m # background jobs of a script ignore SIGINT without job control
killed=0
for sig in INT TERM INT TERM INT TERM; do
  "$rapid" diff --sci "$sci" --ref "$ref" --out "$tmp/k" >/dev/null 2>&1 &
  pid=$!
  while kill -0 $pid 2>/dev/null && ! compgen -G "$tmp/.k.*" >/dev/null; do sleep 0.001; done
  kill -$sig $pid 2>/dev/null; wait $pid 2>/dev/null
  [ $? = $((128 + $(kill -l $sig))) ] && killed=$((killed+1))
  expect "diff SIG$sig while writing: the whole set" "$(whole_diff_set "$tmp/k"; echo $?)"
  expect "diff SIG$sig while writing: no temporaries" "$( [ -z "$(ls -A "$tmp" | grep '^\.k\.')" ]; echo $?)"
done
set +m
expect "diff: the signals ended some runs ($killed of 6)" "$( [ $killed -ge 3 ]; echo $?)"
rm -rf "$tmp"

echo "cli: $((n-fail)) passed, $fail failed"
[ $fail -eq 0 ]
