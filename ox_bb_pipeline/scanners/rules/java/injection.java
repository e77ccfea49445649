// Semgrep test cases for injection.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
package com.example;

import java.io.File;
import java.io.IOException;
import java.net.URL;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.Statement;
import javax.servlet.http.Cookie;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import org.apache.commons.io.FilenameUtils;
import org.owasp.encoder.Encode;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;

public class Cases {
    void download(HttpServletRequest request, HttpServletResponse response) throws IOException {
        String name = request.getParameter("name");
        // ruleid: ox.java.path-traversal
        File file = new File("/srv/files", name);
        // ok: ox.java.path-traversal
        File safe = new File("/srv/files", FilenameUtils.getName(name));
        // ruleid: ox.java.path-traversal
        File inFolder = new File(name, "/Test.txt");
        // ruleid: ox.java.xss
        response.getWriter().print("<p>" + name + "</p>");
        // ok: ox.java.xss
        response.getWriter().print("<p>" + Encode.forHtml(name) + "</p>");
        // ruleid: ox.java.open-redirect
        response.sendRedirect(request.getParameter("next"));
        // ok: ox.java.open-redirect
        response.sendRedirect("/home");
    }

    void lookup(HttpServletRequest request, java.sql.Connection connection) throws Exception {
        String id = request.getParameter("id");
        String sql = "SELECT * FROM users WHERE id = '" + id + "'";
        // ruleid: ox.java.sql-taint
        connection.createStatement().executeQuery(sql);
        // ruleid: ox.java.sql-taint
        connection.prepareCall("{call " + id + "}");
        java.sql.PreparedStatement statement = connection.prepareStatement("SELECT * FROM users WHERE id = ?");
        statement.setString(1, id);
        // ok: ox.java.sql-taint
        statement.executeQuery();
        // ok: ox.java.sql-taint
        connection.createStatement().executeQuery("SELECT * FROM users WHERE id = " + Integer.parseInt(id));
        // ruleid: ox.java.path-traversal
        new java.io.File("/srv/files", id);
    }

    void constants(HttpServletRequest request, java.sql.Connection connection) throws Exception {
        String param = request.getParameter("id");
        int num = 106;
        String dead = (7 * 18) + num > 200 ? "1" : param;
        // ok: ox.java.sql-taint
        connection.createStatement().executeQuery("SELECT * FROM t WHERE id = " + dead);
        String live = (7 * 42) - num > 200 ? "1" : param;
        // ruleid: ox.java.sql-taint
        connection.createStatement().executeQuery("SELECT * FROM t WHERE id = " + live);
        String never = "1";
        if ((500 / 42) + num > 200) never = param;
        // ok: ox.java.sql-taint
        connection.createStatement().executeQuery("SELECT * FROM t WHERE id = " + never);
    }

    Process render(String fileName) throws Exception {
        // ruleid: ox.java.os-command
        return Runtime.getRuntime().exec("convert /data/uploads/" + fileName + " /data/out/statement.pdf");
    }

    Process shell(String command) throws Exception {
        // ruleid: ox.java.os-command
        return new ProcessBuilder("sh", "-c", command).start();
    }

    Process fixed() throws Exception {
        // ok: ox.java.os-command
        return Runtime.getRuntime().exec("uptime");
    }

    void accounts(Connection connection, String email) throws Exception {
        Statement statement = connection.createStatement();
        // ruleid: ox.java.sql-string
        statement.executeQuery("SELECT id, email FROM accounts WHERE email = '" + email + "'");
        // ruleid: ox.java.sql-string
        statement.execute(String.format("DELETE FROM accounts WHERE email = '%s'", email));
        // ok: ox.java.sql-string
        PreparedStatement ps = connection.prepareStatement("SELECT id FROM accounts WHERE email = ?");
        ps.setString(1, email);
        // ok: ox.java.sql-string
        statement.executeQuery("SELECT count(*) FROM accounts");
    }

    Process fromRequest(HttpServletRequest request) throws Exception {
        java.util.List<String> argList = new java.util.ArrayList<String>();
        argList.add("sh");
        argList.add("-c");
        argList.add("echo " + request.getHeader("X-Name"));
        ProcessBuilder pb = new ProcessBuilder();
        // ruleid: ox.java.os-command
        pb.command(argList);
        String[] env = {"NAME=" + request.getParameter("name")};
        // ruleid: ox.java.os-command
        Runtime.getRuntime().exec(new String[] {"/usr/bin/env"}, env);
        int num = 86;
        String bar = (7 * 42) - num > 200 ? "This_should_always_happen" : request.getParameter("name");
        // ok: ox.java.os-command
        return Runtime.getRuntime().exec("echo " + bar);
    }

    void session(HttpServletRequest request) {
        String name = request.getParameter("name");
        // ruleid: ox.java.trust-boundary
        request.getSession().setAttribute("user", name);
        javax.servlet.http.HttpSession session = request.getSession();
        // ruleid: ox.java.trust-boundary
        session.putValue(name, "10340");
        // ok: ox.java.trust-boundary
        session.setAttribute("user", "anonymous");
    }

    void directory(HttpServletRequest request, javax.naming.directory.DirContext ctx) throws Exception {
        String uid = request.getParameter("uid");
        javax.naming.directory.SearchControls sc = new javax.naming.directory.SearchControls();
        String filter = "(&(objectclass=person)(uid=" + uid + "))";
        // ruleid: ox.java.ldap-injection
        ctx.search("ou=users,dc=example,dc=org", filter, sc);
        // ok: ox.java.ldap-injection
        ctx.search("ou=users,dc=example,dc=org", "(&(objectclass=person)(uid={0}))", new Object[] {uid}, sc);
    }

    void employees(HttpServletRequest request, javax.xml.xpath.XPath xp, org.w3c.dom.Document doc) throws Exception {
        String id = request.getParameter("id");
        // ruleid: ox.java.xpath-injection
        xp.evaluate("/Employees/Employee[@emplid='" + id + "']", doc);
        // ruleid: ox.java.xpath-injection
        xp.compile("/Employees/Employee[@emplid='" + id + "']");
        // ok: ox.java.xpath-injection
        xp.evaluate("/Employees/Employee[@emplid='" + Integer.parseInt(id) + "']", doc);
    }

    void wrapped(HttpServletRequest request, HttpServletResponse response) throws IOException {
        RequestWrapper scr = new RequestWrapper(request);
        String param = scr.getTheParameter("name");
        // ruleid: ox.java.xss
        response.getWriter().format("<p>%s</p>", param);
        // ok: ox.java.xss
        response.getWriter().printf("<p>%s</p>", org.springframework.web.util.HtmlUtils.htmlEscape(param));
        java.util.Map<String, Object> map = new java.util.HashMap<String, Object>();
        map.put("keyB", param);
        // ruleid: ox.java.xss
        response.getWriter().write(((String) map.get("keyB")).toCharArray(), 0, 4);
    }

    @GetMapping("/preview")
    String preview(@RequestParam("url") String url) throws IOException {
        // ruleid: ox.java.ssrf
        new URL(url).openStream();
        // ok: ox.java.ssrf
        new URL("https://api.example.com/status").openStream();
        // ruleid: ox.java.open-redirect
        return "redirect:" + url;
    }

    void configure(HttpSecurity http) throws Exception {
        // ruleid: ox.java.csrf-disabled
        http.csrf().disable();
        // ok: ox.java.csrf-disabled
        http.cors().disable();
    }

    void remember(HttpServletResponse response, String token) {
        Cookie cookie = new Cookie("remember", token);
        // ruleid: ox.java.insecure-cookie
        cookie.setSecure(false);
        // ok: ox.java.insecure-cookie
        cookie.setHttpOnly(true);
        response.addCookie(cookie);
        Cookie plain = new Cookie("theme", "dark");
        // ruleid: ox.java.insecure-cookie
        response.addCookie(plain);
        Cookie secure = new Cookie("session", token);
        secure.setSecure(true);
        // ok: ox.java.insecure-cookie
        response.addCookie(secure);
    }
}
