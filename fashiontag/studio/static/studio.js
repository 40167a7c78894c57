// fashiontag studio: the little script the server-rendered pages use. Every POST carries the
// page's CSRF token; nothing here knows the server's admin key.
"use strict";
const studio = (() => {
  const token = document.querySelector('meta[name="csrf-token"]').content;

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({error: response.statusText}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function grid() {
    document.querySelectorAll(".tile").forEach((tile) => {
      const save = tile.querySelector(".correct-save");
      if (!save) return;
      save.addEventListener("click", async () => {
        const result = tile.querySelector(".correct-result");
        try {
          await post("/api/label", {
            number: Number(tile.dataset.number),
            attribute: tile.querySelector(".correct-attribute").value,
            value: tile.querySelector(".correct-value").value.trim(),
          });
          result.textContent = "saved for the next training";
        } catch (error) {
          result.textContent = error.message;
        }
      });
    });
  }

  function attributes() {
    document.getElementById("define-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = document.getElementById("define-result");
      try {
        await post("/api/attributes", {
          name: document.getElementById("define-name").value.trim(),
          values: document.getElementById("define-values").value.split(","),
          applies_to: [...document.querySelectorAll(".define-applies:checked")].map((c) => c.value),
        });
        window.location.reload();
      } catch (error) {
        result.textContent = error.message;
      }
    });
    document.getElementById("rollback").addEventListener("click", async () => {
      const result = document.getElementById("rollback-result");
      result.textContent = "rolling back…";
      try {
        const data = await post("/api/rollback");
        result.textContent = `version ${data.version} is served`;
        window.location.reload();
      } catch (error) {
        result.textContent = error.message;
      }
    });
  }

  function labeller() {
    const root = document.getElementById("labeller");
    const name = root.dataset.attribute;
    const data = JSON.parse(document.getElementById("label-data").textContent);
    let position = 0;

    function show() {
      if (!data.numbers.length) return;
      const number = data.numbers[position];
      document.getElementById("current-image").src = `/image/${number}`;
      document.getElementById("current-image").dataset.number = number;
      document.getElementById("current-image").dataset.id = data.ids[number];
      document.getElementById("current-id").textContent =
        `image ${position + 1} of ${data.numbers.length}: ${data.ids[number]}`;
      const label = data.labels[number];
      document.getElementById("current-label").textContent = label ? `labelled: ${label}` : "not labelled";
      const strip = document.getElementById("strip");
      strip.replaceChildren(...data.numbers.slice(position, position + 12).map((n) => {
        const img = document.createElement("img");
        img.src = `/thumb/${n}`;
        img.className = data.labels[n] ? "done" : "";
        return img;
      }));
    }

    function counts(table) {
      for (const [value, c] of Object.entries(table)) {
        const row = document.querySelector(`#counts tr[data-value="${CSS.escape(value)}"]`);
        row.querySelector(".have").textContent = c.labels;
        row.querySelector(".need").textContent = c.needed;
      }
    }

    async function label(value) {
      const number = data.numbers[position];
      const reply = await post("/api/label", {attribute: name, number, value});
      if (value === null) delete data.labels[number]; else data.labels[number] = value;
      counts(reply.counts);
      if (position < data.numbers.length - 1) position += 1;
      show();
    }

    document.querySelectorAll("button.value").forEach((b) =>
      b.addEventListener("click", () => label(b.dataset.value)));
    document.addEventListener("keydown", (event) => {
      if (event.target.tagName === "INPUT") return;
      if (event.key >= "1" && event.key <= "9" && Number(event.key) <= data.values.length) {
        label(data.values[Number(event.key) - 1]);
      } else if (event.key === "0") {
        label(null);
      } else if (event.key === "ArrowRight") {
        position = Math.min(position + 1, data.numbers.length - 1); show();
      } else if (event.key === "ArrowLeft") {
        position = Math.max(position - 1, 0); show();
      }
    });

    const train = document.getElementById("train");
    if (train) train.addEventListener("click", async () => {
      const message = document.getElementById("job-message");
      message.className = "";
      message.textContent = "training…";
      train.disabled = true;
      try {
        let job = await post(`/api/train/${name}`);
        while (job.state === "running") {
          await new Promise((resolve) => setTimeout(resolve, 500));
          job = await (await fetch(`/api/jobs/${job.id}`)).json();
          document.getElementById("job-stages").replaceChildren(...job.stages.map((s) => {
            const li = document.createElement("li");
            li.textContent = `${s.stage}: ${s.seconds} s`;
            return li;
          }));
        }
        message.className = job.state;
        if (job.state === "done") {
          const r = job.report;
          message.textContent = `${job.message}: ${r.kind} head, cross-validated accuracy ` +
            `${r.cv_accuracy === null ? "n/a" : r.cv_accuracy.toFixed(3)} in ${job.seconds} s`;
          if (r.confusion) {
            document.getElementById("job-confusion").textContent =
              "confusion (rows: true, columns: predicted)\n" + r.values.join(" | ") + "\n" +
              r.confusion.map((row, i) => `${r.values[i]}: ${row.join(" ")}`).join("\n");
          }
        } else {
          message.textContent = job.message;
        }
      } catch (error) {
        message.className = "refused";
        message.textContent = error.message;
      } finally {
        train.disabled = false;
      }
    });
    show();
  }

  return {grid, attributes, labeller, post};
})();
