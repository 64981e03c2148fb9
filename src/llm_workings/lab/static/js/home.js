// The home page's "Train your own model" panel: a short run of a recipe, and the runs it leaves.
import { jobPanel } from "./views/job-panel.js";
import { modelPicker } from "./views/model-picker.js";

const picker = modelPicker(document.getElementById("runs-picker"), { filter: { source: "run" }, label: "Your training runs" });
jobPanel(document.getElementById("job-panel"), {
  recipe: "induction-2l",
  steps: 200,
  async onFinished(result) {
    await picker.refresh();
    picker.setValue(`run.${result.run}`);
  },
});
