// Semgrep test cases for injection.yaml in TypeScript.
import { exec } from "child_process";
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
