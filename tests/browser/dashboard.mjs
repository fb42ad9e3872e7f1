// The dashboard in headless Chromium against a live `edgescore serve`:
//   node dashboard.mjs BASE_URL SCREENSHOT.png
// Opens BASE_URL/dashboard, ingests events until the page shows a throughput above zero, sends a
// few events the service rejects, looks up a user's median through the page's box, saves a
// screenshot, and prints what the page shows as one JSON line for the Rust test to check against
// the API. Any request the page makes beyond the service fails the run (no internet needed).
import { chromium } from "playwright-core";

const [base, screenshot] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error("usage: node dashboard.mjs BASE_URL SCREENSHOT.png");
  process.exit(2);
}
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

const external = [];
const pageErrors = [];
let ingesting = true;
let sent = 0;

async function ingest(events) {
  const r = await fetch(base + "/ingest", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ events }),
  });
  if (r.status !== 200) throw new Error("ingest: " + r.status + " " + (await r.text()));
  return r.json();
}

// Steady traffic while the page watches: 50 events per request over 20 users.
async function traffic() {
  let i = 0;
  while (ingesting) {
    const now = Date.now() / 1000;
    const events = Array.from({ length: 50 }, (_, k) => ({
      user_id: "dash-" + ((i * 50 + k) % 20),
      timestamp: now,
      features: [((i + k) % 10) / 10, 0.2, 0.3],
    }));
    await ingest(events);
    sent += events.length;
    i += 1;
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.route("**/*", route =>
    route.request().url().startsWith(base) ? route.continue() : (external.push(route.request().url()), route.abort()));
  page.on("pageerror", e => pageErrors.push(String(e)));

  await page.goto(base + "/dashboard");
  // Rejections the page must show: one late event, one of the wrong width. An event is late
  // only against a watermark, so one event is acknowledged first to raise it.
  const now = Date.now() / 1000;
  await ingest([{ user_id: "dash-0", timestamp: now, features: [0.1, 0.2, 0.3] }]);
  sent += 1;
  const load = traffic();
  const rejected = await ingest([
    { user_id: "dash-late", timestamp: now - 3600, features: [0.1, 0.2, 0.3] },
    { user_id: "dash-wide", timestamp: now, features: [0.1, 0.2] },
  ]);
  await page.waitForFunction(
    () => Number(document.getElementById("throughput").textContent.replace(/,/g, "")) > 0,
    null, { timeout: 30000 });
  await page.waitForFunction(() => document.getElementById("p99").textContent !== "–", null, { timeout: 30000 });
  // Let the plots gather a few seconds of points.
  await page.waitForTimeout(4000);
  const throughput = Number((await page.textContent("#throughput")).replace(/,/g, ""));
  const p50 = await page.textContent("#p50");
  const p99 = await page.textContent("#p99");
  ingesting = false;
  await load;

  await page.fill("#user-id", "dash-3");
  await page.click("#lookup button");
  await page.waitForFunction(() => document.getElementById("median").textContent !== "", null, { timeout: 10000 });
  // One more poll after the traffic stopped, so the tables show every rejection.
  await page.waitForTimeout(1500);

  const table = async id => page.$$eval(`#${id} tbody tr`, rows =>
    rows.map(row => Array.from(row.cells, cell => cell.textContent)));
  const shown = {
    throughput,
    events_sent: sent,
    rejected_at_once: rejected.rejected.map(r => r.error),
    p50,
    p99,
    model: await page.textContent("#model"),
    status: await page.textContent("#status"),
    median: await page.textContent("#median"),
    rejections: await table("rejections"),
    drift: await table("drift"),
    shards: await table("shards"),
    plotted_points: await page.evaluate(() => points.length),
    external,
    page_errors: pageErrors,
  };
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(shown));
} finally {
  await browser.close();
}
