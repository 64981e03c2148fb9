// The lesson beside the workbench: "try this" links that set the controls through the
// URL, and checkpoints that ask for a prediction, run the experiment, then explain.

export class Lesson {
  constructor(root, page) {
    this.root = root;
    this.page = page;
    for (const link of root.querySelectorAll("a.try")) {
      link.addEventListener("click", (e) => {
        e.preventDefault();
        const until = link.dataset.until ? Number(link.dataset.until) : null;
        page.applyQuery(link.getAttribute("href"), { play: link.dataset.play !== undefined, until });
      });
    }
    for (const checkpoint of root.querySelectorAll(".checkpoint")) this.wire(checkpoint);
  }

  wire(checkpoint) {
    const run = checkpoint.querySelector("button.run");
    const reveal = checkpoint.querySelector(".reveal");
    const verdict = checkpoint.querySelector(".verdict");
    const options = [...checkpoint.querySelectorAll("input[type=radio]")];
    for (const option of options) option.addEventListener("change", () => (run.disabled = false));
    let revealed = false;
    const experiment = () => this.page.applyQuery(checkpoint.dataset.query, { play: true, until: Number(checkpoint.dataset.until) });
    run.addEventListener("click", async () => {
      if (revealed) return experiment();
      const chosen = options.find((o) => o.checked);
      if (!chosen) return;
      for (const o of options) o.disabled = true;
      run.disabled = true;
      run.textContent = "Running…";
      await experiment();
      const right = chosen.dataset.correct !== undefined;
      const picked = chosen.closest("label").textContent.trim();
      verdict.textContent = right ? `You predicted “${picked}”: that is what happened.` : `You predicted “${picked}”. Here is what happened instead.`;
      verdict.className = `verdict ${right ? "right" : "wrong"}`;
      for (const o of options) o.closest("label").classList.toggle("answer", o.dataset.correct !== undefined);
      reveal.hidden = false;
      revealed = true;
      run.textContent = "Run it again";
      run.disabled = false;
    });
  }
}
