// Semgrep test cases for injection.yaml in TypeScript.
import { exec } from "child_process";
import vm from "node:vm";
// @ts-expect-error no type definitions
import { eval as evaluateSafely } from "notevil";
import safeEval from "safe-eval";
import path from "node:path";
import fs from "node:fs";
import { Request, Response, NextFunction } from "express";

export function lookup(domain: string): void {
  // ruleid: ox.js.os-command
  exec("nslookup " + domain);
}

export function performRedirect() {
  return ({ query }: Request, res: Response, next: NextFunction) => {
    const toUrl: string = query.to as string;
    // ruleid: ox.js.open-redirect
    res.redirect(toUrl);
  };
}

export function searchProducts() {
  return (req: Request, res: Response) => {
    const criteria: any = req.query.q ?? "";
    // ruleid: ox.js.sql-string
    models.sequelize.query(`SELECT * FROM Products WHERE name LIKE '%${criteria}%'`);
    // ok: ox.js.sql-string
    models.sequelize.query("SELECT * FROM Products WHERE name LIKE :q", { replacements: { q: criteria } });
  };
}

export class SearchResultComponent {
  constructor(private readonly sanitizer: DomSanitizer, private readonly route: ActivatedRoute) {}

  show(): void {
    const queryParam: string = this.route.snapshot.queryParams.q;
    // ruleid: ox.js.angular-bypass-sanitizer
    this.searchValue = this.sanitizer.bypassSecurityTrustHtml(queryParam);
    // ok: ox.js.angular-bypass-sanitizer
    this.banner = this.sanitizer.bypassSecurityTrustHtml("<b>Welcome</b>");
  }
}

export function avatar() {
  return async (req: Request, res: Response) => {
    const url = req.body.imageUrl;
    // ruleid: ox.js.ssrf
    const response = await fetch(url);
    // ok: ox.js.ssrf
    await fetch("https://cdn.example.com/avatars/" + req.body.id);
    res.json(response.status);
  };
}

export function placeOrder() {
  return ({ body }: Request, res: Response, next: NextFunction) => {
    const lines = body.lines || "";
    const box = { evaluateSafely, lines };
    vm.createContext(box);
    // ruleid: ox.js.sandbox-code-injection
    vm.runInContext("evaluateSafely(lines)", box, { timeout: 1000 });
    // ruleid: ox.js.sandbox-code-injection
    evaluateSafely(body.discount);
    // ruleid: ox.js.sandbox-code-injection
    safeEval(body.total, { price: 3 });
    const counts = { lines, limit: 10 };
    // ok: ox.js.sandbox-code-injection
    vm.runInNewContext("lines.length > limit", counts);
    // ok: ox.js.sandbox-code-injection
    safeEval("price * 2", { price: body.price });
    res.json({ ok: true });
  };
}

export function serveDocuments() {
  return ({ params }: Request, res: Response) => {
    const name = params.name;
    if (!name.includes("/")) {
      sendChecked(name, res);
      sendCutFirst(name, res);
      sendUnchanged(name, res);
    }
  };

  function sendChecked(name: string, res: Response) {
    if (name && hasAllowedExtension(name)) {
      name = stripNullByte(name);
      // ruleid: ox.js.file-check-before-truncate
      res.sendFile(path.resolve("docs/", name));
    }
  }

  function sendCutFirst(name: string, res: Response) {
    name = stripNullByte(name);
    if (hasAllowedExtension(name)) {
      // ok: ox.js.file-check-before-truncate
      res.sendFile(path.resolve("docs/", name));
    }
  }

  function sendUnchanged(name: string, res: Response) {
    if (hasAllowedExtension(name)) {
      // ok: ox.js.file-check-before-truncate
      res.sendFile(path.resolve("docs/", name));
    }
  }

  function hasAllowedExtension(name: string) {
    return name.endsWith(".md") || name.endsWith(".pdf");
  }
}
