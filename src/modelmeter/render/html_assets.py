"""The inline style and script of the HTML report (:mod:`modelmeter.render.html_report`): no
network, no library. Everything is scoped to one ``.mm`` container, so several reports can
share a notebook page (each fragment carries the script; it sets up the containers not set up
yet).

The script: a row of the module tree (``tr`` with ``data-id`` and ``data-parent``) is shown
when its parent is shown and open; the toggle button opens or closes a row; the search box
shows the rows whose name or type contains the text, with their ancestors; a click on a
sortable column head orders every group of siblings by that column's ``data-v`` (numbers as
numbers; first click largest first, the next click reverses), which also sorts flat tables
(their rows have no parent). A roofline point (``circle.mm-pt``) names its module rows in
``data-rows`` (their ``data-id``): hovering it highlights them (``mm-hover``); a click marks
them (``mm-picked``, the previous mark cleared), opens their ancestors and scrolls to the
first.
"""

from __future__ import annotations

CSS = """
.mm{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d232b;max-width:1400px}
.mm h1{font-size:1.5em;margin:.2em 0}.mm h2{font-size:1.15em;margin:1.2em 0 .4em}
.mm .mm-meta{color:#56606b;margin:.2em 0 .8em}
.mm table{border-collapse:collapse;margin:.3em 0}
.mm th,.mm td{padding:2px 8px;border-bottom:1px solid #e3e6ea;text-align:left;white-space:nowrap}
.mm th{background:#f3f5f7;position:sticky;top:0}
.mm .n{text-align:right;font-variant-numeric:tabular-nums}
.mm th.mm-sort{cursor:pointer;user-select:none}
.mm th[aria-sort=descending]::after{content:" \\25BE"}.mm th[aria-sort=ascending]::after{content:" \\25B4"}
.mm tr.mm-row:hover td{background:#eef4fb}
.mm tr.mm-hover td{background:#fff3c4}.mm tr.mm-picked td{background:#ffe08a}
.mm circle.mm-pt{cursor:pointer}
.mm .mm-tog{border:0;background:none;cursor:pointer;width:1.3em;padding:0;color:#3a6ea5}
.mm .mm-tog::before{content:"\\25B8"}.mm tr.open>td>.mm-tog::before{content:"\\25BE"}
.mm .mm-leaf{display:inline-block;width:1.3em}
.mm .mm-type{color:#56606b}
.mm .mm-controls{margin:.4em 0}.mm .mm-controls input{padding:3px 6px;width:18em}
.mm .b-compute{color:#b5452f}.mm .b-memory{color:#2f6db5}.mm .b-overhead{color:#7a5aa8}
.mm circle.b-compute{fill:#d9664c}.mm circle.b-memory{fill:#4c86d9}
.mm circle.b-overhead{fill:#9a7bc6}.mm circle{fill-opacity:.7;stroke:#222;stroke-width:.5}
.mm circle:hover{fill-opacity:1;stroke-width:1.5}
.mm svg text{font-size:11px;fill:#444}.mm .mm-warn{color:#a33;font-weight:600}
.mm .mm-bar{display:flex;height:18px;width:600px;border:1px solid #ccc;margin:.3em 0}
.mm .mm-bar span{display:block;height:100%}
.mm dl{display:flex;flex-wrap:wrap;gap:.2em 1.5em;margin:.4em 0}.mm dl div{display:flex;gap:.4em}
.mm dt{color:#56606b}.mm dd{margin:0}.mm .mm-legend span{margin-right:1.2em}
.mm .mm-bar .b-compute{background:#d9664c}.mm .mm-bar .b-memory{background:#4c86d9}
.mm .mm-bar .b-overhead{background:#9a7bc6}
"""

JS = """
(function(){
function num(x){return x!==undefined&&x!==""&&!isNaN(Number(x));}
function key(r,c){var d=r.cells[c];return d?(d.dataset.v!==undefined?d.dataset.v:d.textContent):"";}
function sortTable(t,c,dir){
  var b=t.tBodies[0],kids={},out=[];
  Array.prototype.forEach.call(b.rows,function(r){var p=r.dataset.parent||"";(kids[p]=kids[p]||[]).push(r);});
  function cmp(a,z){var x=key(a,c),y=key(z,c);
    return dir*((num(x)&&num(y))?Number(x)-Number(y):String(x).localeCompare(String(y)));}
  (function walk(p){(kids[p]||[]).slice().sort(cmp).forEach(function(r){out.push(r);
    if(r.dataset.id!==undefined)walk(r.dataset.id);});})("");
  out.forEach(function(r){b.appendChild(r);});
}
function init(root){
  root.dataset.ready="1";
  var tree=root.querySelector("table.mm-tree"),search=root.querySelector(".mm-search");
  if(tree){
    var rows=function(){return Array.prototype.slice.call(tree.tBodies[0].rows);},byId={};
    rows().forEach(function(r){byId[r.dataset.id]=r;});
    var show=function(){
      var q=search?search.value.trim().toLowerCase():"";
      if(q){var keep=new Set();
        rows().forEach(function(r){
          if((r.dataset.name+" "+r.dataset.type).toLowerCase().indexOf(q)>=0){
            for(var p=r;p;p=byId[p.dataset.parent])keep.add(p);}});
        rows().forEach(function(r){r.hidden=!keep.has(r);});return;}
      rows().forEach(function(r){var p=byId[r.dataset.parent];
        r.hidden=!!p&&(p.hidden||!p.classList.contains("open"));});
    };
    var setOpen=function(r,o){r.classList.toggle("open",o);
      var t=r.querySelector(".mm-tog");if(t)t.setAttribute("aria-expanded",o?"true":"false");};
    tree.addEventListener("click",function(e){var t=e.target.closest(".mm-tog");if(!t)return;
      var r=t.closest("tr");setOpen(r,!r.classList.contains("open"));show();});
    if(search)search.addEventListener("input",show);
    root.querySelectorAll(".mm-all").forEach(function(btn){btn.addEventListener("click",function(){
      var o=btn.dataset.open==="1";rows().forEach(function(r){if(r.querySelector(".mm-tog"))
        setOpen(r,o||r.dataset.depth==="0");});show();});});
    show();
    var mark=function(c,cls,on){(c.dataset.rows||"").split(" ").forEach(function(id){
      var r=byId[id];if(r)r.classList.toggle(cls,on);});};
    root.querySelectorAll("circle.mm-pt[data-rows]").forEach(function(c){
      c.addEventListener("mouseenter",function(){mark(c,"mm-hover",true);});
      c.addEventListener("mouseleave",function(){mark(c,"mm-hover",false);});
      c.addEventListener("click",function(){
        rows().forEach(function(r){r.classList.remove("mm-picked");});mark(c,"mm-picked",true);
        var first=null;(c.dataset.rows||"").split(" ").forEach(function(id){var r=byId[id];if(!r)return;
          first=first||r;for(var p=byId[r.dataset.parent];p;p=byId[p.dataset.parent])setOpen(p,true);});
        if(search)search.value="";show();if(first)first.scrollIntoView({block:"nearest"});});});
  }
  root.querySelectorAll("th.mm-sort").forEach(function(th){th.addEventListener("click",function(){
    var t=th.closest("table"),dir=th.getAttribute("aria-sort")==="descending"?1:-1;
    if(th.dataset.text==="1"&&!th.hasAttribute("aria-sort"))dir=1;
    t.querySelectorAll("th").forEach(function(h){h.removeAttribute("aria-sort");});
    th.setAttribute("aria-sort",dir<0?"descending":"ascending");
    sortTable(t,th.cellIndex,dir);if(t===tree&&search)search.dispatchEvent(new Event("input"));});});
}
document.querySelectorAll(".mm:not([data-ready])").forEach(init);
})();
"""

__all__ = ["CSS", "JS"]
