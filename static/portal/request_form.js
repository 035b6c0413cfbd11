// The request form's enhancements. The form works without them: it always shows a few blank rows,
// and the name preview is rendered by the server on every page load.
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

  // "Add another" copies the formset's empty row (Django's __prefix__) and counts it in TOTAL_FORMS.
  function addRow(prefix) {
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var template = document.getElementById(prefix + "-template");
    var rows = document.getElementById(prefix + "-rows");
    if (!total || !template || !rows) {
      return;
    }
    var index = parseInt(total.value, 10);
    var html = template.innerHTML.replace(/__prefix__/g, String(index)).replace(/__num__/g, String(index + 1));
    rows.insertAdjacentHTML("beforeend", html);
    total.value = String(index + 1);
    filterSizes();
    var added = rows.lastElementChild;
    var first = added ? added.querySelector("input, select") : null;
    if (first) {
      first.focus();
    }
  }

  function wireAddButtons() {
    document.querySelectorAll("[data-add-row]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        addRow(button.getAttribute("data-add-row"));
      });
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

  document.addEventListener("DOMContentLoaded", function () {
    wireRegionAbbreviation();
    wireSizeFilter();
    wireAddButtons();
    wireDirectorySearch();
  });
})();
