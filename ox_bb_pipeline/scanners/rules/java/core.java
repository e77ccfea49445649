// Semgrep test cases for java.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
package test;

import java.beans.XMLDecoder;
import java.io.ByteArrayInputStream;
import java.io.ObjectInputStream;
import java.security.MessageDigest;
import java.security.cert.X509Certificate;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.Statement;
import javax.crypto.Cipher;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import javax.script.ScriptEngine;

public class Cases {

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

    Object decode(byte[] raw) throws Exception {
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(raw))) {
            // ruleid: ox.java.insecure-deserialization
            return in.readObject();
        }
    }

    Object decodeXml(byte[] raw) {
        // ruleid: ox.java.insecure-deserialization
        return new XMLDecoder(new ByteArrayInputStream(raw)).readObject();
    }

    Object script(ScriptEngine engine, String code) throws Exception {
        // ruleid: ox.java.script-eval
        return engine.eval(code);
    }

    Object constantScript(ScriptEngine engine) throws Exception {
        // ok: ox.java.script-eval
        return engine.eval("1 + 2");
    }

    static byte[] hashPasswordProperly(char[] password, byte[] salt) throws Exception {
        // ok: ox.java.weak-password-hash
        return SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(new PBEKeySpec(password, salt, 600000, 256)).getEncoded();
    }

    Object decodeJson(ObjectMapper mapper, byte[] raw) throws Exception {
        // ok: ox.java.insecure-deserialization
        return mapper.readValue(raw, Map.class);
    }

    static String hash(String password) throws Exception {
        // ruleid: ox.java.weak-password-hash, ox.java.weak-hash
        MessageDigest digest = MessageDigest.getInstance("MD5");
        return new String(digest.digest(password.getBytes()));
    }

    static byte[] hashPassword(byte[] raw) throws Exception {
        // ruleid: ox.java.weak-password-hash, ox.java.weak-hash
        return MessageDigest.getInstance("SHA1").digest(raw);
    }

    static byte[] checksum(byte[] body) throws Exception {
        // ruleid: ox.java.weak-hash
        MessageDigest weak = MessageDigest.getInstance("SHA-1");
        // ok: ox.java.weak-hash
        MessageDigest strong = MessageDigest.getInstance("SHA-256");
        return strong.digest(weak.digest(body));
    }

    static void ciphers() throws Exception {
        // ruleid: ox.java.weak-cipher
        Cipher.getInstance("DES/CBC/PKCS5Padding");
        // ruleid: ox.java.weak-cipher
        Cipher.getInstance("AES/ECB/PKCS5Padding");
        // ruleid: ox.java.weak-cipher
        Cipher.getInstance("AES");
        // ok: ox.java.weak-cipher
        Cipher.getInstance("AES/GCM/NoPadding");
    }

    static TrustManager[] trustAll() {
        return new TrustManager[] {
            new X509TrustManager() {
                public X509Certificate[] getAcceptedIssuers() {
                    return new X509Certificate[0];
                }

                public void checkClientTrusted(X509Certificate[] chain, String authType) {
                }

                // ruleid: ox.java.trust-all-certificates
                public void checkServerTrusted(X509Certificate[] chain, String authType) {
                }
            }
        };
    }

    X509TrustManager checking(X509TrustManager system) {
        return new X509TrustManager() {
            public X509Certificate[] getAcceptedIssuers() {
                return system.getAcceptedIssuers();
            }

            public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
                system.checkClientTrusted(chain, authType);
            }

            // ok: ox.java.trust-all-certificates
            public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
                system.checkServerTrusted(chain, authType);
            }
        };
    }

    // ruleid: ox.java.hardcoded-credential
    private static final String DB_PASSWORD = "X85fve2F97pL4!mvmmpO";
    // ok: ox.java.hardcoded-credential
    private static final String TOKEN_URL = "https://auth.example.com/token";
    // ok: ox.java.hardcoded-credential
    private static final String PASSWORD_PROPERTY = "db.password";
    // ok: ox.java.hardcoded-credential
    private static final String dbPassword = "spring.datasource.password";
    // ok: ox.java.hardcoded-credential
    private final String apiKey = System.getenv("API_KEY");
}
