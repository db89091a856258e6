/// The search page `videobert serve` answers at /: one self-contained HTML file (no outside
/// scripts, styles or fonts). A search box; ranked results with thumbnail, video, times, score
/// and transcript; a <video> that plays the chosen hit from its start. With a server token, open
/// the page as /#token=T: the fragment never reaches the server or its logs; the page sends it
/// as `Authorization: Bearer` with its API calls and as ?token= on the <img> and <video> URLs.
enum SearchPage {
    static func html(hasEmbeddings: Bool, tokenRequired: Bool) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>videobert search</title>
        <style>
        body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
        header { padding: 12px 20px; background: #233; color: #fff; }
        header h1 { font-size: 18px; margin: 0 0 8px; }
        form { display: flex; gap: 8px; flex-wrap: wrap; }
        #q { flex: 1; min-width: 240px; padding: 6px 8px; font-size: 15px; }
        main { display: flex; gap: 20px; padding: 16px 20px; align-items: flex-start; }
        #results { flex: 1; list-style: none; padding: 0; margin: 0; }
        #results li { display: flex; gap: 12px; padding: 8px; margin-bottom: 6px; background: #fff; border: 1px solid #ddd; border-radius: 4px; cursor: pointer; }
        #results li:hover, #results li.playing { border-color: #4a8; }
        #results img { width: 120px; height: auto; image-rendering: pixelated; background: #ccc; flex: none; }
        .meta { color: #666; font-size: 13px; }
        .text { margin-top: 4px; }
        #player { position: sticky; top: 16px; width: 420px; }
        #player video { width: 100%; background: #000; image-rendering: pixelated; }
        #status { color: #666; margin: 0 0 8px; }
        .error { color: #b00; }
        </style></head>
        <body>
        <header><h1>videobert search</h1>
        <form id="form"><input id="q" name="q" placeholder="cut the onion" autofocus>
        <select id="mode"><option value="hybrid">hybrid</option><option value="text">text (BM25)</option>\(hasEmbeddings ? "<option value=\"embedding\">embedding</option>" : "")</select>
        <select id="top"><option>10</option><option>20</option><option>50</option></select>
        <button type="submit">Search</button></form></header>
        <main><div style="flex:1"><p id="status">\(tokenRequired ? "This server needs a token: open the page as /#token=YOUR_TOKEN." : "Type a query.")</p><ol id="results"></ol></div>
        <div id="player"><video id="video" controls preload="metadata"></video><div id="now" class="meta"></div></div></main>
        <script>
        "use strict";
        const token = new URLSearchParams(location.hash.slice(1)).get("token");
        const auth = token ? { "Authorization": "Bearer " + token } : {};
        const withToken = (url) => token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
        const fmt = (t) => { const m = Math.floor(t / 60), s = (t - 60 * m).toFixed(1); return m + ":" + (s < 10 ? "0" : "") + s; };
        const $ = (id) => document.getElementById(id);
        function play(hit, li) {
          const v = $("video");
          document.querySelectorAll("#results li.playing").forEach((e) => e.classList.remove("playing"));
          li.classList.add("playing");
          const src = withToken(hit.media);
          const start = () => { v.currentTime = hit.start; v.play().catch(() => {}); };
          if (v.dataset.src !== src) { v.dataset.src = src; v.src = src; v.addEventListener("loadedmetadata", start, { once: true }); } else { start(); }
          $("now").textContent = hit.video + "  " + fmt(hit.start) + "–" + fmt(hit.end);
        }
        async function search(ev) {
          if (ev) ev.preventDefault();
          const q = $("q").value.trim();
          if (!q) return;
          const url = "/api/search?q=" + encodeURIComponent(q) + "&mode=" + $("mode").value + "&top=" + $("top").value;
          $("status").textContent = "Searching…"; $("status").className = "";
          let body;
          try {
            const r = await fetch(url, { headers: auth });
            body = await r.json();
            if (!r.ok) throw new Error(body.error || r.statusText);
          } catch (e) { $("status").textContent = "Error: " + e.message; $("status").className = "error"; return; }
          const list = $("results");
          list.replaceChildren();
          body.results.forEach((hit, i) => {
            const li = document.createElement("li");
            li.className = "hit"; li.dataset.start = hit.start; li.dataset.id = hit.id;
            const img = document.createElement("img"); img.src = withToken(hit.thumbnail); img.alt = "";
            const d = document.createElement("div");
            const m = document.createElement("div"); m.className = "meta";
            m.textContent = (i + 1) + ". " + hit.video + "  " + fmt(hit.start) + "–" + fmt(hit.end) + "  score " + hit.score.toFixed(4);
            const t = document.createElement("div"); t.className = "text"; t.textContent = hit.text || "(no transcript)";
            d.append(m, t); li.append(img, d);
            li.addEventListener("click", () => play(hit, li));
            list.append(li);
          });
          $("status").textContent = body.results.length + " results (" + body.mode + ")";
        }
        $("form").addEventListener("submit", search);
        const initial = new URLSearchParams(location.search).get("q");
        if (initial) { $("q").value = initial; search(); }
        </script></body></html>
        """
    }
}
