// The --help text; the man page and README tell the same story (a test compares the options).
export const helpText = `
  Usage
    $ rblocksync [options] SRC DST
    $ rblocksync [options] SRC... DSTDIR/
    $ rblocksync -r [options] SRCDIR/ DSTDIR/

  Copies SRC onto DST block by block, writing only the blocks that differ.
  SRC and DST are files or block devices, local paths or [user@]host:path,
  ssh://[user@]host[:port]/path or [user@][v6addr]:path on a remote host
  reached over SSH. Zero blocks are holes: never sent, punched out of DST.
  Several SRCs, a DST ending in / or an existing directory: each file into
  DSTDIR under its name. -r: every regular file of the tree (SRCDIR/ its
  contents, SRCDIR the directory itself), over one connection per host.

  Options
    --truncate              Create a missing DST file, resize it to SRC's size
    -r, --recursive         Sync SRC directory trees file by file (implies --truncate; symlinks, devices, fifos skipped)
    --include GLOB          With -r: sync what matches (rsync-style; the first matching --include/--exclude decides)
    --exclude GLOB          With -r: skip what matches (a directory excluded: all under it)
    --delete                With -r: remove DST regular files SRC no longer has (never symlinks; excluded files kept)
    --watch                 With -r, local SRC: after the first pass, sync each file that changes (Ctrl-C ends, 130)
    --debounce SECONDS      With --watch: how long a file must be quiet before it is synced (default 2)
    -b, --block-size BYTES  Block size, a power of two from 512 to 16M (default 4096)
    -w, --workers N         Parallel workers over ranges of the image (default: CPUs, at most 8)
    -n, --dry-run           Compare and report; write nothing, create nothing
    --src-format FMT        SRC's format: raw, qcow2 or any qemu-img knows (the disk inside, via qemu-nbd)
    --dst-format FMT        DST's format, as --src-format (a missing qcow2 is created with --truncate)
    --format FMT            Both formats at once
    --bitmap NAME           SRC's dirty bitmap (qcow2): after a pass to this DST, read only what the guest wrote
    --qmp SOCKET            SRC is a disk of the running VM on this QMP socket (Proxmox: /var/run/qemu-server/VMID.qmp): its QEMU exports it
    --force-share           Read a formatted SRC a running VM holds (crash-consistent at best; warns)
    --check                 Compare only (a dry run): exit 0 if DST equals SRC, 4 if it differs
    --verify                Re-read both sides after the sync and compare them
    --copy                  Do not read DST: write every non-zero block, zero the rest
    --no-cache              Keep no digest cache of DST (kept on DST's host, the next sync need not read DST)
    --cache-dir DIR         Keep DST's digest cache in DIR, a directory on DST's host
    --trust-cache           Use a block device DST's cache, checking a random sample of its chunks every run
    --cache-sample PERCENT  With --trust-cache: the chunks read and checked, in % (default 1, at least 8 chunks)
    --hash NAME             blake3 or sha256, for remote comparison (default blake3)
    -z, --compress[=MODE]   auto (default: zstd while the link is slower than compressing), off, or a level 1-19
    --bwlimit RATE          Limit the run's data on the wire to RATE bytes/s, all workers together (500K, 20M, 1G)
    -p, --port PORT         SSH port for remote endpoints
    -i, --identity FILE     SSH private key for remote endpoints
    --remote-sudo           Run the remote agent as root through sudo -n (a password it asks for: exit 1)
    --remote-command CMD    The command that runs rblocksync on remote hosts (as rsync's --rsync-path)
    --accept-new-host-key   Trust and record the key of a host not yet in known_hosts
    --timeout SECONDS       Fail when a host is silent that long (default: 30 to connect, else 120)
    --retries N             Reconnect up to N times when an SSH link drops mid-run, resuming (default 3)
    --force                 Write to DST even if it is mounted, or in use by a running VM or another writer
    --progress MODE         tui, plain or none (default: tui on a terminal, else plain)
    --json                  Print the summary as one JSON object on stdout
    --json-progress         Print progress as JSON lines on stderr
    --stat                  Print the summary even with --quiet
    -q, --quiet             Print only errors
    --debug                 Print stack traces with errors
    -h, --help              Show this help
    -v, --version           Show the version

  The summary (also --json) counts bytesScanned, the logical bytes compared
  (holes and ranges the digest cache vouches for included), and srcBytesRead
  and dstBytesRead, the bytes actually read from each image.

  Exit status
    0    DST now equals SRC (or, with --dry-run, the comparison ran)
    1    Usage error or failed precondition (a locked DST, one a running VM uses); DST untouched
    2    I/O or transfer error; DST may be partially updated (many files: the worst file's status)
    3    --verify found DST different from SRC
    4    --check found DST different from SRC (nothing written)
    130  Interrupted; DST may be partially updated

  Examples
    $ rblocksync root@pve:/dev/pve/vm-100-disk-0 vm100.img --truncate
    $ rblocksync vm100.img root@kvm2:/var/lib/libvirt/images/vm100.img
    $ rblocksync pve1:/dev/pve/vm-100-disk-0 pve2:/dev/pve/vm-100-disk-0
    $ rblocksync --remote-sudo vm.img admin@kvm2:/dev/vg0/vm
    $ rblocksync --src-format qcow2 vm.qcow2 root@pve:/dev/pve/vm-100-disk-0
    $ rblocksync --qmp /var/run/qemu-server/100.qmp pve:/dev/pve/vm-100-disk-0 pve2:/dev/pve/vm-100-disk-0
    $ rblocksync pve:/dev/pve/vm-100-disk-0 pve:/dev/pve/vm-100-disk-1 /backup/vm-100/ --truncate
    $ rblocksync -r --delete --include '*/' --include '*.raw' --exclude '*' /var/lib/vz/images/ kvm2:/var/lib/vz/images/
    $ rblocksync --dry-run disk.img /dev/sdb
    $ rblocksync --check --quiet disk.img /dev/sdb    # exit 0: in sync, 4: differs
`;
