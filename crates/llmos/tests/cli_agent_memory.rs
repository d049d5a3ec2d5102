//! `llmos agent --session` with a real model (greedy, so every run is the
//! same): a conversation three times longer than the context still answers
//! a question about its first turn through the recall store, a nested
//! key-value lookup follows two hops through archival memory (after
//! MemGPT's nested KV retrieval), and a session killed with SIGKILL mid-run
//! resumes with everything it had shown.
//!
//! CI runs the kill test and one chain of the key-value lookup (about two
//! minutes); the slow ones are `#[ignore]`d and run with
//! `cargo test --release -p llmos --test cli_agent_memory -- --ignored`
//! (23 min under load, figures in BENCHMARKS.md, "Agent memory").

mod common;
use common::{llmos, model, stderr, stdout};
use llmos_agent::recall::RecallStore;
use std::path::Path;
use std::process::Output;

const MODEL: &str = "qwen2.5-coder-0.5b-instruct";
/// The 0.5B model makes the first hop and then repeats it; the 1.5B
/// follows both (and checks the final value once more, so it needs six
/// steps: the repeated check is not rerun and the next turn answers).
const KV_MODEL: &str = "qwen2.5-coder-1.5b-instruct";
/// The smallest window that holds the prompt with its four tools (~850
/// tokens) and a few turns; the conversation grows to three times this.
const CTX: &str = "1536";
const N_CTX: usize = 1536;

fn agent(home: &Path, m: &Path, session: &str, task: &str) -> Output {
    agent_steps(home, m, session, task, "4", CTX)
}

fn agent_steps(home: &Path, m: &Path, session: &str, task: &str, steps: &str, ctx: &str) -> Output {
    llmos()
        .env("LLMOS_HOME", home)
        .args([
            "agent",
            "--no-python",
            "--max-steps",
            steps,
            "--ctx",
            ctx,
            "--session",
            session,
            "-m",
        ])
        .arg(m)
        .arg(task)
        .output()
        .expect("run llmos")
}

fn ok(o: &Output) -> String {
    let out = stdout(o);
    assert!(o.status.success(), "{}\n{out}", stderr(o));
    out
}

/// Tokens of every message stored in `session`, counted with the model's tokenizer.
fn session_tokens(home: &Path, m: &Path, session: &str) -> usize {
    let st = RecallStore::open(&home.join("sessions.sqlite")).expect("open store");
    let id = st.session(session, false).expect("session");
    let text: String = st
        .messages(id)
        .expect("messages")
        .iter()
        .map(|s| s.message.content.clone() + "\n")
        .collect();
    let f = home.join("all.txt");
    std::fs::write(&f, text).expect("write");
    let o = llmos()
        .args(["tokenize", "--ids", "--no-bos", "-m"])
        .arg(m)
        .arg("-f")
        .arg(&f)
        .output()
        .expect("tokenize");
    let ids: Vec<u32> = serde_json::from_str(stdout(&o).trim()).expect("ids");
    ids.len()
}

const TOPICS: [&str; 8] = [
    "the history of the printing press in fifteenth-century Mainz",
    "how glaciers carve U-shaped valleys over thousands of years",
    "the rules of cricket and how a test match is scored",
    "why sourdough bread needs a starter and long fermentation",
    "the migration routes of arctic terns between the poles",
    "how a four-stroke petrol engine turns fuel into motion",
    "the architecture of Gothic cathedrals and flying buttresses",
    "how coral reefs form and why they bleach in warm water",
];

fn filler(i: usize) -> String {
    let t = TOPICS[i % TOPICS.len()];
    format!(
        "Here is a note for my records, number {i}, about {t}. I read a long article about {t} \
         today and found it fascinating: the details, the people involved, the places, the dates, \
         and the way everything fits together surprised me. I plan to read more about {t} next \
         week and maybe write a short essay about it for my evening class. \
         No question here; just reply with one short sentence."
    )
}

const LOCKER: &str = "My locker code is 4821. Please remember it.";
const LOCKER_Q: &str = "What is my locker code? Look it up with recall_search.";

/// Every turn a real run (33 `llmos agent` runs, ~15 min). Not in CI: a
/// cheaper form that wrote the filler turns to the store and resumed them
/// in one run took 4 min under load (seven summaries at once) and failed:
/// qwen2.5-coder-0.5b answered without calling `recall_search`.
#[test]
#[ignore = "slow (~15 min): cargo test --release -p llmos --test cli_agent_memory -- --ignored"]
fn a_conversation_three_times_the_context_recalls_its_first_turn() {
    let Some(m) = model(MODEL) else { return };
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let s = "locker";
    let mut paged = vec![ok(&agent(h, &m, s, LOCKER))];
    let mut turns = 1;
    while session_tokens(h, &m, s) < 3 * N_CTX {
        turns += 1;
        assert!(turns < 60, "the conversation does not grow");
        let out = ok(&agent(h, &m, s, &filler(turns)));
        assert!(out.contains("context: "), "{out}");
        paged.push(out);
    }
    let all = paged.join("\n");
    // Paged out during the conversation, before the question.
    assert!(
        all.lines()
            .any(|l| l.starts_with("memory: paged out") && l.contains("(turns 1–")),
        "{all}"
    );
    let q = ok(&agent(h, &m, s, LOCKER_Q));
    // Every call stayed within its budget: "context: USED/1536".
    for l in all
        .lines()
        .chain(q.lines())
        .filter(|l| l.starts_with("context: "))
    {
        let used: usize = l["context: ".len()..]
            .split('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        assert!(used <= N_CTX - N_CTX / 4, "{l}");
    }
    // Answered through the recall store: the search found the first turn ...
    assert!(q.contains("call: recall_search"), "{q}");
    assert!(
        q.contains("[turn 1, message #1, user] My locker code is 4821"),
        "{q}"
    );
    // ... and the answer has the code.
    let answer = q.split("── answer\n").nth(1).unwrap_or_default();
    assert!(answer.contains("4821"), "{q}");
    eprintln!(
        "{turns} turns, {} tokens stored, context {CTX}",
        session_tokens(h, &m, s)
    );
}

/// Deterministic 8-hex-digit keys (SplitMix64).
fn keys(n: usize) -> Vec<String> {
    let mut x: u64 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            format!("{:08x}", (z ^ (z >> 31)) as u32)
        })
        .collect()
}

/// The CI form: the first chain (~40 s).
#[test]
fn nested_key_value_lookup_follows_two_hops_in_archival_memory() {
    nested_kv(&[0]);
}

#[test]
#[ignore = "slow (~2 min): cargo test --release -p llmos --test cli_agent_memory -- --ignored"]
fn nested_key_value_lookup_follows_two_hops_on_three_chains() {
    nested_kv(&[0, 10, 20]);
}

fn nested_kv(chains: &[usize]) {
    let Some(m) = model(KV_MODEL) else { return };
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    // 40 pairs; pair i's value is pair i+1's key for the chains starting at 0, 10, 20.
    let k = keys(80);
    // Archival memory is per session: each question gets its own session
    // holding the same 40 notes.
    let st = RecallStore::open(&h.join("sessions.sqlite")).expect("store");
    for start in [0usize, 10, 20] {
        let id = st.session(&format!("kv{start}"), true).expect("session");
        for i in 0..40 {
            let value = if i % 10 == 0 { &k[i + 1] } else { &k[40 + i] };
            st.archival_insert(id, &format!("key {} has value {value}", k[i]), false)
                .expect("insert");
        }
    }
    drop(st);
    let mut passed = 0;
    let mut report = Vec::new();
    for &start in chains {
        let want = &k[40 + start + 1];
        let task = format!(
            "In archival memory, find the value of key {}. That value is itself a key: \
             find its value too. Answer with that final value.",
            k[start]
        );
        // A window where the lookups need no paging: at 1536 the run paged
        // out its own search results before answering (chain 20 then
        // answered the middle value; 2/3).
        let out = ok(&agent_steps(
            h,
            &m,
            &format!("kv{start}"),
            &task,
            "6",
            "2048",
        ));
        report.push((start, want.clone(), out));
    }
    for (start, want, out) in &report {
        let answer = out.split("── answer\n").nth(1).unwrap_or_default();
        if answer.contains(want.as_str()) {
            passed += 1;
        } else {
            eprintln!("chain {start}: wanted {want}\n{out}");
        }
    }
    assert_eq!(
        passed,
        chains.len(),
        "two-hop lookups answered: {passed}/{}",
        chains.len()
    );
}

#[test]
fn a_session_killed_mid_run_resumes_with_everything_it_showed() {
    use std::io::BufRead;
    let Some(m) = model(MODEL) else { return };
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let mut child = llmos()
        .env("LLMOS_HOME", h)
        .args([
            "agent",
            "--no-python",
            "--ctx",
            CTX,
            "--session",
            "crash",
            "-m",
        ])
        .arg(&m)
        .arg("what is 2**200 / 7, exactly?")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn llmos");
    let out = child.stdout.take().expect("stdout");
    let mut shown = Vec::new();
    for line in std::io::BufReader::new(out).lines() {
        let line = line.unwrap_or_default();
        let stop = line.starts_with("result of calculator");
        shown.push(line);
        if stop {
            // SIGKILL while the next model turn runs.
            child.kill().expect("kill");
            break;
        }
    }
    let _ = child.wait();
    let shown = shown.join("\n");
    assert!(shown.contains("result of calculator"), "{shown}");
    let st = RecallStore::open(&h.join("sessions.sqlite")).expect("store");
    let id = st.session("crash", false).expect("session");
    let msgs = st.messages(id).expect("messages");
    let roles: Vec<&str> = msgs.iter().map(|s| s.message.role.as_str()).collect();
    assert_eq!(roles[..3], ["user", "assistant", "tool"], "{msgs:?}");
    assert!(msgs[1].message.content.contains("calculator"));
    assert!(
        msgs[2]
            .message
            .content
            .contains("1606938044258990275541962092341162602522202993782792835301376/7"),
        "{msgs:?}"
    );
    drop(st);
    // Resume: the new task goes after the history, and the run completes.
    let o = agent(
        h,
        &m,
        "crash",
        "What did I ask you first? Quote my question.",
    );
    let out = ok(&o);
    assert!(out.contains("── ended:"), "{out}");
    let st = RecallStore::open(&h.join("sessions.sqlite")).expect("store");
    let msgs = st.messages(id).expect("messages");
    let t2: Vec<i64> = msgs.iter().map(|s| s.turn).collect();
    assert!(
        t2[..3] == [1, 1, 1] && t2.contains(&2) && t2.windows(2).all(|w| w[0] <= w[1]),
        "{t2:?}"
    );
    let shown = llmos()
        .env("LLMOS_HOME", h)
        .args(["sessions", "show", "crash"])
        .output()
        .expect("sessions show");
    let listing = ok(&shown);
    // (The resumed run may have paged turn 1 out: it is still listed, tagged.)
    let first = listing
        .lines()
        .position(|l| l.starts_with("── turn 1 #1 user"));
    let next = first.and_then(|i| listing.lines().nth(i + 1));
    assert_eq!(next, Some("what is 2**200 / 7, exactly?"), "{listing}");
    eprintln!("resumed:\n{out}");
}
