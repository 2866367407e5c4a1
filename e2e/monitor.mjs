// e2e/monitor.mjs — a browser check of the ops server's monitoring UI.
//
// Starts `bin/pagesend demo` on a free loopback port, waits for its
// summary (by then one sample job has been dead-lettered, i.e. archived
// in asynq), opens the asynqmon UI mounted at /monitor/ in Debian's
// headless Chromium through playwright-core, and checks what a person
// would see:
//
//   1. the dashboard's queues table lists the queue "default";
//   2. clicking "default", then its "Archived" chip, lands on
//      /monitor/queues/default?status=archived, and the archived tasks
//      table shows at least one row of type pagesend:send with an error;
//   3. the same URL opened directly (a deep link, as after a reload)
//      renders the same table;
//   4. no request to the ops server answered >= 400, no request failed,
//      and the page threw no uncaught error.
//
// Screenshots go to e2e/screenshots/ (monitor-dashboard.png,
// monitor-archived.png). Every wait has its own timeout and the whole run
// has a watchdog, so it cannot hang. Exits 1 with the reason, the list of
// failed requests and the tail of the demo's output on any failure.
//
// Environment (all optional):
//   PAGESEND_BIN   the pagesend binary       (default: bin/pagesend)
//   CHROMIUM       the Chromium executable   (default: `which chromium`, else /usr/bin/chromium)
//   E2E_TIMEOUT_MS the watchdog for the run  (default: 150000)
//   E2E_HEADFUL=1  show the browser (needs a display)

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const bin = path.resolve(root, process.env.PAGESEND_BIN || "bin/pagesend");
const shotsDir = path.join(here, "screenshots");
const watchdogMs = Number(process.env.E2E_TIMEOUT_MS || 150_000);

// Timeouts of the individual waits.
const T = {
  healthz: 20_000, // the ops server answers /healthz
  summary: 75_000, // the demo prints its summary (it settles in ~5 s; its own cap is 60 s)
  launch: 30_000, // Chromium starts
  nav: 20_000, // a page load
  dom: 20_000, // a DOM condition
};

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`[e2e ${elapsed()}] ${msg}`);

class CheckError extends Error {}
const fail = (msg) => {
  throw new CheckError(msg);
};

// ---------------------------------------------------------------- demo

/** Output of the demo, kept for the failure report. */
const demoOut = [];
let demo = null; // the child process
let demoExit = null; // {code, signal} once it exited

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function startDemo(port) {
  if (!existsSync(bin)) fail(`${bin} not found: build it first (make e2e does: go build -o bin/pagesend ./cmd/pagesend)`);
  const args = ["demo", "--duration", "90s", "--ops-addr", `127.0.0.1:${port}`];
  log(`starting ${bin.startsWith(root + path.sep) ? path.relative(root, bin) : bin} ${args.join(" ")}`);
  demo = spawn(bin, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const collect = (stream) => {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop();
      demoOut.push(...lines);
    });
    stream.on("end", () => partial && demoOut.push(partial));
  };
  collect(demo.stdout);
  collect(demo.stderr);
  demo.on("exit", (code, signal) => {
    demoExit = { code, signal };
  });
  demo.on("error", (err) => {
    demoExit = { code: null, signal: null, err };
  });
}

async function stopDemo() {
  if (!demo || demoExit) return;
  demo.kill("SIGTERM");
  const deadline = Date.now() + 5_000;
  while (!demoExit && Date.now() < deadline) await sleep(50);
  if (!demoExit) demo.kill("SIGKILL");
}

function demoTail(n = 40) {
  return demoOut.slice(-n).map((l) => `  | ${l}`).join("\n") || "  | (no output)";
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls cond every `every` ms until it returns a truthy value, the demo
 *  exits, or timeoutMs passes; returns the value or throws what. */
async function until(what, timeoutMs, cond, every = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (demoExit) fail(`the demo exited (${describeExit(demoExit)}) while waiting for ${what}`);
    if (Date.now() >= deadline) fail(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(every);
  }
}

function describeExit(e) {
  if (e.err) return `could not start: ${e.err.message}`;
  return e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
}

async function httpStatus(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- browser

function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  try {
    const p = execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
    if (p) return p;
  } catch {
    /* fall through */
  }
  return "/usr/bin/chromium";
}

// The flags this machine needs: no sandbox as root, and nothing that
// reaches for Google's hosts (the network is closed).
const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** What went wrong on the wire, for the report. */
const badResponses = []; // >= 400 from the ops server
const failedRequests = []; // never answered
const pageErrors = []; // uncaught exceptions in the page
const stubbed = new Set(); // requests to other origins, answered locally
const consoleErrors = [];
let lastPage = null; // for a screenshot when something fails

async function watch(context, opsOrigin) {
  // asynqmon's index.html links Google Fonts; this machine has no route to
  // them. Answer every request that leaves the ops server with an empty
  // 200 so it neither fails nor hangs, and list it; the UI draws with the
  // fallback font.
  await context.route(
    (url) => url.origin !== opsOrigin && (url.protocol === "http:" || url.protocol === "https:"),
    (route) => {
      const req = route.request();
      stubbed.add(req.url());
      const type = req.resourceType() === "stylesheet" ? "text/css" : "application/octet-stream";
      return route.fulfill({ status: 200, contentType: type, body: "" });
    },
  );
  context.on("response", (res) => {
    let origin;
    try {
      origin = new URL(res.url()).origin;
    } catch {
      return;
    }
    if (origin === opsOrigin && res.status() >= 400) {
      badResponses.push(`${res.request().method()} ${res.url()} → ${res.status()} ${res.statusText()}`);
    }
  });
  context.on("requestfailed", (req) => {
    failedRequests.push(`${req.method()} ${req.url()} → ${req.failure()?.errorText ?? "failed"}`);
  });
  context.on("page", (page) => watchPage(page));
  for (const page of context.pages()) watchPage(page);
}

function watchPage(page) {
  page.on("pageerror", (err) => pageErrors.push(`${page.url()}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(`${page.url()}: ${msg.text()}`);
  });
}

/** Fails with what went wrong on the wire so far, if anything did. */
function assertCleanWire(step) {
  const problems = [
    ...badResponses.map((s) => `HTTP error: ${s}`),
    ...failedRequests.map((s) => `request failed: ${s}`),
    ...pageErrors.map((s) => `uncaught page error: ${s}`),
  ];
  if (problems.length) fail(`${step}: ${problems.length} problem(s) on the wire:\n    ${problems.join("\n    ")}`);
}

/** Waits until selector is in the DOM, failing early (with the UI's own
 *  message) if asynqmon shows an error alert instead. */
async function waitForDom(page, what, selector, timeoutMs = T.dom) {
  let outcome;
  try {
    const handle = await page.waitForFunction(
      (sel) => {
        if (document.querySelector(sel)) return "ok";
        const alert = [...document.querySelectorAll('[role="alert"]')].find((a) => /error/i.test(a.textContent));
        return alert ? `alert: ${alert.textContent.replace(/\s+/g, " ").trim()}` : false;
      },
      selector,
      { timeout: timeoutMs },
    );
    outcome = await handle.jsonValue();
  } catch (err) {
    if (!/timeout/i.test(err.message)) throw err;
    fail(`${what}: timed out after ${timeoutMs / 1000}s waiting for ${selector} (page: ${page.url()})`);
  }
  if (outcome !== "ok") fail(`${what}: asynqmon shows an error instead of ${selector}: "${outcome.slice(7)}"`);
  await page.locator(selector).first().waitFor({ state: "visible", timeout: timeoutMs });
}

/** page.waitForFunction(fn, arg) with a timeout. fn runs in the page and
 *  returns a truthy value when done; on timeout this fails with what, and
 *  with what fn returns when called with {...arg, diag: true} (fn should
 *  then report what the page shows instead). */
async function waitInPage(page, what, fn, arg, timeoutMs = T.dom) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: timeoutMs });
    return await handle.jsonValue();
  } catch (err) {
    if (!/timeout/i.test(err.message)) throw err;
    const seen = await page.evaluate(fn, { ...arg, diag: true }).catch(() => "?");
    fail(`${what}: timed out after ${timeoutMs / 1000}s (page: ${page.url()}); the page shows: ${JSON.stringify(seen)}`);
  }
}

const QUEUES_TABLE = 'table[aria-label="queues overview table"]';
const ARCHIVED_TABLE = 'table[aria-label="archived tasks table"]';
const TASK_TYPE = "pagesend:send";

/** In the page: the queue names in asynqmon's queues overview table
 *  (each row's first link) once `want` is among them. */
function queueNamesWith({ table, want, diag }) {
  const names = [...document.querySelectorAll(`${table} tbody tr`)]
    .map((r) => (r.querySelector("a")?.textContent ?? r.cells[0]?.textContent ?? "").trim())
    .filter(Boolean);
  return (diag || names.includes(want)) && names;
}

/** In the page: the archived table's rows as {id, type, error, text},
 *  once one has the task type `type`. Columns (checkbox, ID, Type,
 *  Payload, Last Failed, Last Error, Actions) are found by header text,
 *  so another column order still reads right. */
function archivedRowsWith({ table, type, diag }) {
  const t = document.querySelector(table);
  const heads = t ? [...t.querySelectorAll("thead th")].map((th) => th.textContent.trim()) : [];
  const [iID, iType, iErr] = ["ID", "Type", "Last Error"].map((h) => heads.indexOf(h));
  const rows = (t ? [...t.querySelectorAll("tbody tr")] : []).map((tr) => {
    const cells = [...tr.cells].map((c) => c.textContent.trim());
    return {
      id: iID >= 0 ? cells[iID] : "",
      type: iType >= 0 ? cells[iType] : "",
      error: iErr >= 0 ? cells[iErr] : "",
      text: cells.filter(Boolean).join(" | "),
    };
  });
  return (diag || rows.some((r) => r.type === type)) && rows;
}

/** In the page: the count on the "Archived N" chip of the queue view,
 *  once it is at least one. */
function archivedChipCount({ diag }) {
  const chips = [...document.querySelectorAll('[role="button"]')].map((b) => b.textContent.replace(/\s+/g, " ").trim());
  if (diag) return chips.filter((t) => /^\w+ \d+$/.test(t));
  const m = chips.map((t) => /^Archived (\d+)$/.exec(t)).find(Boolean);
  return m && Number(m[1]) > 0 && Number(m[1]);
}

async function checkArchived(page, how) {
  await waitForDom(page, `archived tasks (${how})`, `${ARCHIVED_TABLE} tbody tr`);
  // Rows render once the task list has been fetched; wait for one of ours.
  const rows = await waitInPage(page, `an archived ${TASK_TYPE} row (${how})`, archivedRowsWith, {
    table: ARCHIVED_TABLE,
    type: TASK_TYPE,
  });
  const task = rows.find((r) => r.type === TASK_TYPE);
  if (!task.error) fail(`archived ${TASK_TYPE} task ${task.id} (${how}) shows no "Last Error": ${task.text}`);
  log(`archived (${how}): ${rows.length} row(s); ${task.type} ${task.id}: last error "${task.error}"`);
  return rows;
}

// ---------------------------------------------------------------- the check

async function run() {
  mkdirSync(shotsDir, { recursive: true });
  // No screenshot of an earlier run may pass for one of this run.
  for (const f of ["monitor-dashboard.png", "monitor-archived.png", "monitor-failure.png"]) {
    rmSync(path.join(shotsDir, f), { force: true });
  }

  const port = await freePort();
  startDemo(port);

  // The demo says where its ops server is; it falls back to another
  // port if ours was taken in the meantime.
  const opsAddr = await until("the demo's ops server address", T.healthz, () => {
    for (const l of demoOut) {
      const m = /^ops server: http:\/\/(\S+?)\/metrics/.exec(l);
      if (m) return m[1];
    }
    return null;
  });
  const ops = `http://${opsAddr}`;
  await until(`${ops}/healthz to answer 200`, T.healthz, async () => (await httpStatus(`${ops}/healthz`)) === 200);
  log(`ops server up at ${ops}`);

  const verdict = await until("the demo's summary", T.summary, () => {
    for (const l of demoOut) {
      if (/^all \d+ outcomes as expected/.test(l)) return l;
      if (/^\d+ mismatches/.test(l)) return l;
    }
    return null;
  });
  log(`demo summary: ${verdict}`);
  if (!/^all \d+ outcomes as expected/.test(verdict)) {
    log(`warning: the demo's outcomes differ from what it expected; the monitor check goes on`);
  }

  const monitor = `${ops}/monitor/`;
  const exe = chromiumPath();
  if (!existsSync(exe)) fail(`no Chromium at ${exe}: apt-get install chromium (make e2e does, as root)`);
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), "pagesend-e2e-chromium-"));
  log(`launching ${exe}`);
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: exe,
      headless: process.env.E2E_HEADFUL !== "1",
      args: chromiumArgs,
      viewport: { width: 1400, height: 900 },
      timeout: T.launch,
    });
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    fail(`could not launch Chromium (${exe}): ${err.message.split("\n")[0]}`);
  }
  try {
    context.setDefaultTimeout(T.dom);
    context.setDefaultNavigationTimeout(T.nav);
    await watch(context, new URL(ops).origin);
    const page = context.pages()[0] ?? (await context.newPage());
    lastPage = page;

    // 1. Dashboard: the queues table lists "default".
    log(`loading ${monitor}`);
    const res = await page.goto(monitor, { waitUntil: "load" });
    if (!res || res.status() !== 200) {
      fail(`GET ${monitor} answered ${res ? res.status() : "nothing"}: is asynqmon mounted at /monitor/ on the ops server?`);
    }
    const title = await page.title();
    if (!/asynq/i.test(title)) fail(`${monitor} has title "${title}", not asynqmon's ("Asynq - Monitoring")`);
    await waitForDom(page, "the dashboard's queues table", `${QUEUES_TABLE} tbody tr`);
    const queues = await waitInPage(page, 'queue "default" in the queues table', queueNamesWith, {
      table: QUEUES_TABLE,
      want: "default",
    });
    const others = ["high", "low"].filter((q) => queues.includes(q));
    log(`queues table lists: ${queues.join(", ")}${others.length ? "" : " (no high or low: asynq lists a queue once it has held a task)"}`);
    await page.screenshot({ path: path.join(shotsDir, "monitor-dashboard.png"), fullPage: true });
    assertCleanWire("dashboard");

    // 2. Archived tasks of "default", reached the way a person would.
    await page.locator(`${QUEUES_TABLE} tbody tr a`, { hasText: /^default$/ }).first().click();
    await page.waitForURL(/\/monitor\/queues\/default(\?|$)/, { timeout: T.nav });
    const chip = page.getByRole("button", { name: /^Archived\s+\d+$/ });
    await chip.waitFor({ state: "visible" });
    // The chip's count comes from the queue info; wait until it is loaded.
    const archivedCount = await waitInPage(page, 'the "Archived" chip to count at least one task', archivedChipCount, {});
    await chip.click();
    await page.waitForURL(/\/monitor\/queues\/default\?status=archived$/, { timeout: T.nav });
    log(`at ${page.url()} (chip: Archived ${archivedCount})`);
    await checkArchived(page, "clicked through");
    // No hover or focus highlight on the chip in the picture.
    await page.mouse.move(0, 0);
    await page.evaluate(() => document.activeElement?.blur());
    await page.screenshot({ path: path.join(shotsDir, "monitor-archived.png"), fullPage: true });
    assertCleanWire("archived tasks");

    // 3. The same view as a deep link: the mount serves the UI for any
    // path under /monitor/, so a reload or a shared URL works.
    const deep = `${ops}/monitor/queues/default?status=archived`;
    const page2 = await context.newPage();
    lastPage = page2;
    const res2 = await page2.goto(deep, { waitUntil: "load" });
    if (!res2 || res2.status() !== 200) fail(`GET ${deep} answered ${res2 ? res2.status() : "nothing"}`);
    await checkArchived(page2, "deep link");
    await page2.close();
    lastPage = page;

    // 4. Nothing went wrong on the wire, start to end.
    assertCleanWire("whole run");
    if (stubbed.size) log(`answered locally (no network here): ${[...stubbed].join(", ")}`);
    if (consoleErrors.length) log(`console errors (not failures):\n    ${consoleErrors.join("\n    ")}`);
  } catch (err) {
    // Keep what the browser showed when it went wrong.
    if (lastPage && !lastPage.isClosed()) {
      const shot = path.join(shotsDir, "monitor-failure.png");
      await lastPage.screenshot({ path: shot, fullPage: true, timeout: 10_000 }).then(
        () => log(`screenshot of the failure: ${path.relative(root, shot)} (page: ${lastPage.url()})`),
        () => {},
      );
    }
    throw err;
  } finally {
    await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- main

function describeError(err) {
  if (err instanceof CheckError) return err.message;
  // Playwright's own errors (a click or wait that timed out) carry a call
  // log; their message is what matters.
  if (err?.name === "TimeoutError" || /playwright|locator|page\./i.test(err?.stack ?? "")) return err.message;
  return err?.stack || String(err);
}

function report(err) {
  console.error(`\nFAIL e2e/monitor.mjs after ${elapsed()}: ${describeError(err)}`);
  const wire = [
    ...badResponses.map((s) => `HTTP error: ${s}`),
    ...failedRequests.map((s) => `request failed: ${s}`),
    ...pageErrors.map((s) => `uncaught page error: ${s}`),
  ];
  if (wire.length) console.error(`\nfailed requests and page errors:\n  ${wire.join("\n  ")}`);
  if (consoleErrors.length) console.error(`\nbrowser console errors:\n  ${consoleErrors.join("\n  ")}`);
  console.error(`\ndemo output (last lines${demoExit ? `; it ended with ${describeExit(demoExit)}` : ""}):\n${demoTail()}`);
  if (existsSync(shotsDir)) console.error(`\nscreenshots so far: ${path.relative(root, shotsDir)}/`);
}

const watchdog = setTimeout(async () => {
  report(new CheckError(`the whole check took longer than ${watchdogMs / 1000}s`));
  await stopDemo();
  process.exit(1);
}, watchdogMs);

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    await stopDemo();
    process.exit(130);
  });
}
// Last resort: never leave the demo behind.
process.on("exit", () => {
  if (demo && !demoExit) demo.kill("SIGKILL");
});

let code = 0;
try {
  await run();
  console.log(`\nPASS e2e/monitor.mjs in ${elapsed()}: screenshots in ${path.relative(root, shotsDir)}/ (monitor-dashboard.png, monitor-archived.png)`);
} catch (err) {
  report(err);
  code = 1;
} finally {
  clearTimeout(watchdog);
  await stopDemo();
}
process.exit(code);
