// The request form's enhancements. The form works without them: it shows one row of each kind (every
// posted row when it is shown again), and the name preview is rendered by the server on every page load.
(function () {
  "use strict";

  // Prefill the region abbreviation from the chosen region, unless the team lead typed their own.
  function suggestedAbbreviation(region) {
    var option = region.options[region.selectedIndex];
    return option ? option.getAttribute("data-abbreviation") || "" : "";
  }

  function wireRegionAbbreviation() {
    var region = document.getElementById("id_region");
    var abbv = document.getElementById("id_region_abbv");
    if (!region || !abbv) {
      return;
    }
    var prefilled = suggestedAbbreviation(region);
    region.addEventListener("change", function () {
      if (abbv.value === "" || abbv.value === prefilled) {
        prefilled = suggestedAbbreviation(region);
        abbv.value = prefilled;
      }
    });
    if (abbv.value === "" && prefilled !== "") {
      abbv.value = prefilled;
    }
  }

  // "Add a cluster" / "Add a member" copy the formset's empty row (Django's __prefix__) and count it in
  // TOTAL_FORMS; "Remove" takes a row out and renumbers the rows after it, so the rows posted are always
  // prefix-0 .. prefix-(TOTAL_FORMS - 1) and a removed row is not submitted at all.
  function formsetParts(prefix) {
    return {
      total: document.getElementById("id_" + prefix + "-TOTAL_FORMS"),
      max: document.getElementById("id_" + prefix + "-MAX_NUM_FORMS"),
      template: document.getElementById(prefix + "-template"),
      rows: document.getElementById(prefix + "-rows"),
      button: document.querySelector("[data-add-row='" + prefix + "']"),
    };
  }

  function showRemoveButtons(rows) {
    rows.querySelectorAll("[data-remove-row]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function updateAddButton(parts) {
    if (parts.button && parts.max) {
      parts.button.disabled = parseInt(parts.total.value, 10) >= parseInt(parts.max.value, 10);
    }
  }

  function addRow(prefix) {
    var parts = formsetParts(prefix);
    if (!parts.total || !parts.template || !parts.rows) {
      return;
    }
    var index = parseInt(parts.total.value, 10);
    var html = parts.template.innerHTML.replace(/__prefix__/g, String(index)).replace(/__num__/g, String(index + 1));
    parts.rows.insertAdjacentHTML("beforeend", html);
    parts.total.value = String(index + 1);
    showRemoveButtons(parts.rows);
    updateAddButton(parts);
    filterSizes();
    var added = parts.rows.lastElementChild;
    var first = added ? added.querySelector("input, select") : null;
    if (first) {
      first.focus();
    }
  }

  var RENUMBERED = ["name", "id", "for", "aria-describedby", "list"];

  function renumberRow(row, prefix, index) {
    var pattern = new RegExp(prefix + "-\\d+-", "g");
    var replacement = prefix + "-" + index + "-";
    row.querySelectorAll("*").forEach(function (element) {
      RENUMBERED.forEach(function (name) {
        var value = element.getAttribute(name);
        if (value !== null && pattern.test(value)) {
          element.setAttribute(name, value.replace(pattern, replacement));
        }
        pattern.lastIndex = 0;
      });
    });
    row.querySelectorAll("[data-row-number]").forEach(function (number) {
      number.textContent = String(index + 1);
    });
  }

  function removeRow(button) {
    var row = button.closest("[data-row]");
    var rows = row ? row.parentElement : null;
    var prefix = rows && rows.id ? rows.id.replace(/-rows$/, "") : "";
    var parts = formsetParts(prefix);
    if (!row || !parts.total) {
      return;
    }
    var next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    Array.prototype.forEach.call(rows.children, function (each, index) {
      renumberRow(each, prefix, index);
    });
    parts.total.value = String(rows.children.length);
    updateAddButton(parts);
    var focus = next ? next.querySelector("input, select") : parts.button;
    if (focus) {
      focus.focus();
    }
  }

  function wireRowButtons() {
    document.querySelectorAll("[data-add-row]").forEach(function (button) {
      var prefix = button.getAttribute("data-add-row");
      var parts = formsetParts(prefix);
      button.hidden = false;
      if (parts.rows) {
        showRemoveButtons(parts.rows);
      }
      updateAddButton(parts);
      button.addEventListener("click", function () {
        addRow(prefix);
      });
    });
    document.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("[data-remove-row]") : null;
      if (button) {
        removeRow(button);
      }
    });
  }

  // Offer only the VM sizes Azure has in the chosen region and the environment's policy allows.
  function listed(option, name, value) {
    var values = option.getAttribute(name);
    return values === null || value === "" || values.split(" ").indexOf(value) !== -1;
  }

  function refused(option, name, value) {
    var values = option.getAttribute(name);
    return values !== null && value !== "" && values.split(" ").indexOf(value) !== -1;
  }

  function filterSizes() {
    var region = document.getElementById("id_region");
    var environment = document.getElementById("id_environment");
    var where = region ? region.value : "";
    var env = environment ? environment.value : "";
    document.querySelectorAll("select[name$='-vm_size'] option[value]").forEach(function (option) {
      if (option.value === "") {
        return;
      }
      var offered = listed(option, "data-regions", where) && !refused(option, "data-refused-environments", env);
      option.hidden = !offered;
      option.disabled = !offered && !option.selected;
    });
    // Where the environment's policy refuses dedicated nodes, low priority is the only choice.
    document.querySelectorAll("select[name$='-priority'] option[data-refused-environments]").forEach(function (option) {
      var refusedHere = refused(option, "data-refused-environments", env);
      option.hidden = refusedHere;
      option.disabled = refusedHere;
      if (refusedHere && option.selected) {
        option.parentElement.value = "low_priority";
      }
    });
  }

  function wireSizeFilter() {
    ["id_region", "id_environment"].forEach(function (id) {
      var select = document.getElementById(id);
      if (select) {
        select.addEventListener("change", filterSizes);
      }
    });
    filterSizes();
  }

  // Member fields suggest people (and the security group field, groups) from the directory: one search
  // after a pause in typing, never for fewer than 2 characters; the server bounds and caches them too.
  function wireDirectorySearch() {
    var form = document.getElementById("request-form");
    var url = form && form.getAttribute("data-directory-url");
    if (!url) {
      return;
    }
    var timer = null;
    var asked = "";
    form.addEventListener("input", function (event) {
      var field = event.target;
      var name = field.name || "";
      var kind = /-principal$/.test(name) ? "user" : name === "security_group" ? "group" : "";
      if (!kind) {
        return;
      }
      field.setAttribute("list", "directory-" + kind);
      window.clearTimeout(timer);
      var typed = field.value.trim();
      if (typed.length < 2 || typed === asked) {
        return;
      }
      timer = window.setTimeout(function () {
        asked = typed;
        var query = "?kind=" + kind + "&q=" + encodeURIComponent(typed);
        fetch(url + query, { credentials: "same-origin", headers: { Accept: "text/html" } })
          .then(function (response) { return response.ok ? response.text() : ""; })
          .then(function (options) { document.getElementById("directory-" + kind).innerHTML = options; })
          .catch(function () {});
      }, 350);
    });
  }

  // Show the project's short name and the pool's teams only for the purpose chosen (without JavaScript both
  // show, and the server ignores the one not chosen).
  function wirePurpose() {
    var radios = document.querySelectorAll("input[name='purpose']");
    if (!radios.length) {
      return;
    }
    function show() {
      var chosen = document.querySelector("input[name='purpose']:checked");
      var purpose = chosen ? chosen.value : "team";
      document.querySelectorAll("[data-purpose-only]").forEach(function (part) {
        part.hidden = part.getAttribute("data-purpose-only") !== purpose;
      });
    }
    radios.forEach(function (radio) { radio.addEventListener("change", show); });
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    wirePurpose();
    wireRegionAbbreviation();
    wireSizeFilter();
    wireRowButtons();
    wireDirectorySearch();
  });
})();
