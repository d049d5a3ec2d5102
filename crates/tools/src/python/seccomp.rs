//! The seccomp filter bwrap installs in the sandbox (`--seccomp FD`): a
//! classic-BPF program over `struct seccomp_data` that makes the kernel
//! interfaces a Python cell has no use for fail with `EPERM`, on top of the
//! namespaces and rlimits.
//!
//! Denied: tracing other processes (`ptrace`, `process_vm_*`), anything that
//! builds namespaces or mounts (`unshare`, `setns`, `mount` and the new mount
//! API, `pivot_root`, `chroot`, `clone` with a namespace flag; `clone3`
//! answers `ENOSYS` because its flags sit in memory a filter cannot read,
//! and glibc then falls back to `clone`), the kernel keyring, `bpf`,
//! `perf_event_open`, `userfaultfd`, `io_uring`, module loading, `kexec`,
//! `reboot`, swap, clock and host-name changes, `open_by_handle_at` (the
//! classic container escape) and the other rarely used calls Docker's default
//! profile also refuses. Another architecture's calls (`int 0x80`) kill the
//! process; x32 calls (bit 30 of the number) fail.
//!
//! Written by hand rather than with a filter compiler: it is one fixed list,
//! forty-odd instructions, and the x32 and `clone3` cases are exactly where
//! generic compilers differ. The sandbox tests call each family through
//! ctypes and expect `EPERM`.

/// x86-64 system call numbers refused with `EPERM`.
#[cfg(target_arch = "x86_64")]
const DENIED: &[(u32, &str)] = &[
    (101, "ptrace"),
    (310, "process_vm_readv"),
    (311, "process_vm_writev"),
    (272, "unshare"),
    (308, "setns"),
    (165, "mount"),
    (166, "umount2"),
    (155, "pivot_root"),
    (161, "chroot"),
    (428, "open_tree"),
    (429, "move_mount"),
    (430, "fsopen"),
    (431, "fsconfig"),
    (432, "fsmount"),
    (433, "fspick"),
    (442, "mount_setattr"),
    (248, "add_key"),
    (249, "request_key"),
    (250, "keyctl"),
    (321, "bpf"),
    (298, "perf_event_open"),
    (323, "userfaultfd"),
    (425, "io_uring_setup"),
    (426, "io_uring_enter"),
    (427, "io_uring_register"),
    (175, "init_module"),
    (313, "finit_module"),
    (176, "delete_module"),
    (246, "kexec_load"),
    (320, "kexec_file_load"),
    (169, "reboot"),
    (167, "swapon"),
    (168, "swapoff"),
    (163, "acct"),
    (172, "iopl"),
    (173, "ioperm"),
    (303, "name_to_handle_at"),
    (304, "open_by_handle_at"),
    (103, "syslog"),
    (179, "quotactl"),
    (164, "settimeofday"),
    (227, "clock_settime"),
    (159, "adjtimex"),
    (305, "clock_adjtime"),
    (170, "sethostname"),
    (171, "setdomainname"),
    (300, "fanotify_init"),
    (212, "lookup_dcookie"),
    (153, "vhangup"),
    (134, "uselib"),
];

#[cfg(target_arch = "x86_64")]
mod consts {
    pub const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
    pub const X32_BIT: u32 = 0x4000_0000;
    pub const NR_CLONE: u32 = 56;
    pub const NR_CLONE3: u32 = 435;
}

/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
const CLONE_NS_FLAGS: u32 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0_LO: u32 = 16;

#[derive(Clone, Copy)]
enum Target {
    Next,
    Eperm,
    Enosys,
    Allow,
}

struct Insn {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        k,
        jt: Target::Next,
        jf: Target::Next,
    }
}

fn jump(code: u16, k: u32, jt: Target, jf: Target) -> Insn {
    Insn { code, k, jt, jf }
}

/// The program as bwrap reads it: `struct sock_filter` records (u16 code,
/// u8 jt, u8 jf, u32 k, native endian), back to back. `None` on an
/// architecture this list is not written for (the sandbox then runs without
/// a filter, as before, and says so).
pub fn program() -> Option<Vec<u8>> {
    #[cfg(target_arch = "x86_64")]
    {
        use consts::*;
        let mut p = vec![
            stmt(LD_W_ABS, OFF_ARCH),
            // jt is set below to skip the kill that follows
            jump(JEQ_K, AUDIT_ARCH, Target::Next, Target::Next),
        ];
        let arch_check = p.len() - 1;
        p.push(stmt(RET_K, RET_KILL_PROCESS));
        p.push(stmt(LD_W_ABS, OFF_NR));
        p.push(jump(JGE_K, X32_BIT, Target::Eperm, Target::Next));
        for &(nr, _) in DENIED {
            p.push(jump(JEQ_K, nr, Target::Eperm, Target::Next));
        }
        p.push(jump(JEQ_K, NR_CLONE3, Target::Enosys, Target::Next));
        p.push(jump(JEQ_K, NR_CLONE, Target::Next, Target::Allow));
        p.push(stmt(LD_W_ABS, OFF_ARG0_LO));
        p.push(jump(JSET_K, CLONE_NS_FLAGS, Target::Eperm, Target::Allow));
        // tail: ALLOW, EPERM, ENOSYS
        let allow = p.len();
        let eperm = allow + 1;
        let enosys = allow + 2;
        p.push(stmt(RET_K, RET_ALLOW));
        p.push(stmt(RET_K, RET_ERRNO | EPERM));
        p.push(stmt(RET_K, RET_ERRNO | ENOSYS));
        let mut out = Vec::with_capacity(p.len() * 8);
        for (i, ins) in p.iter().enumerate() {
            let off = |t: Target| -> u8 {
                let to = match t {
                    Target::Next => i + 1,
                    Target::Eperm => eperm,
                    Target::Enosys => enosys,
                    Target::Allow => allow,
                };
                // forward jumps only, and the program is far shorter than 256
                u8::try_from(to - (i + 1)).expect("seccomp jump fits in u8")
            };
            let (mut jt, jf) = (off(ins.jt), off(ins.jf));
            if i == arch_check {
                // arch matches: skip the kill; else fall into it
                jt = 1;
            }
            out.extend_from_slice(&ins.code.to_ne_bytes());
            out.push(jt);
            out.push(jf);
            out.extend_from_slice(&ins.k.to_ne_bytes());
        }
        Some(out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// The names of the denied calls, for messages and docs.
pub fn denied_names() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        DENIED.iter().map(|&(_, n)| n).collect()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// A tiny interpreter of the instructions this module emits, so the
    /// program's decisions are checked without a kernel.
    fn run(prog: &[u8], nr: u32, arch: u32, arg0: u32) -> u32 {
        let insns: Vec<(u16, u8, u8, u32)> = prog
            .chunks_exact(8)
            .map(|c| {
                (
                    u16::from_ne_bytes([c[0], c[1]]),
                    c[2],
                    c[3],
                    u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let (code, jt, jf, k) = insns[pc];
            pc += 1;
            match code {
                LD_W_ABS => {
                    acc = match k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        OFF_ARG0_LO => arg0,
                        _ => panic!("load at {k}"),
                    }
                }
                JEQ_K | JGE_K | JSET_K => {
                    let hit = match code {
                        JEQ_K => acc == k,
                        JGE_K => acc >= k,
                        _ => acc & k != 0,
                    };
                    pc += usize::from(if hit { jt } else { jf });
                }
                RET_K => return k,
                _ => panic!("opcode {code:#x}"),
            }
        }
    }

    #[test]
    fn decisions() {
        let p = program().unwrap();
        let x86_64 = consts::AUDIT_ARCH;
        let eperm = RET_ERRNO | EPERM;
        assert_eq!(run(&p, 0, x86_64, 0), RET_ALLOW, "read");
        assert_eq!(run(&p, 57, x86_64, 0), RET_ALLOW, "fork");
        for &(nr, name) in DENIED {
            assert_eq!(run(&p, nr, x86_64, 0), eperm, "{name}");
        }
        assert_eq!(run(&p, 435, x86_64, 0), RET_ERRNO | ENOSYS, "clone3");
        // a thread: CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|...
        assert_eq!(run(&p, 56, x86_64, 0x003d_0f00), RET_ALLOW, "clone thread");
        assert_eq!(run(&p, 56, x86_64, 0x1000_0000), eperm, "clone NEWUSER");
        assert_eq!(run(&p, 56, x86_64, 0x4000_0000), eperm, "clone NEWNET");
        assert_eq!(run(&p, 0x4000_0000 + 101, x86_64, 0), eperm, "x32 ptrace");
        assert_eq!(run(&p, 26, 0x4000_0003, 0), RET_KILL_PROCESS, "i386");
        assert_eq!(p.len() % 8, 0);
    }
}
